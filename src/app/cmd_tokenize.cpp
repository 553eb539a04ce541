#include "app/commands.h"
namespace dsocr::app {
void add_tokenize_commands(CLI::App&) {}  // TODO(tokenizer)
}
