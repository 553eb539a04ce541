#include "app/commands.h"
namespace dsocr::app {
void add_encode_command(CLI::App&) {}  // TODO(encoder)
}
