// Removes grounding spans (<|ref|>LABEL<|/ref|><|det|>[[...]]<|/det|>) from streamed model text, so
// that a terminal shows readable markdown while the page is still being generated. Text that might
// be the start of a span is held back until it is decided.
#pragma once
#include <string>
#include <string_view>

namespace dsocr {

class GroundingStreamFilter {
 public:
  std::string push(std::string_view piece);  // text that is now safe to show
  std::string flush();                        // the rest (an unfinished span is dropped)

 private:
  std::string pending_;
  bool drop_newline_ = false;  // a span just closed: its content starts on the next line
};

}  // namespace dsocr
