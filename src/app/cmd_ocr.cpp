#include "app/commands.h"
namespace dsocr::app {
void add_ocr_command(CLI::App&) {}  // TODO(engine)
}
