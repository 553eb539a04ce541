#include "app/commands.h"
namespace dsocr::app {
void add_info_command(CLI::App&) {}  // TODO(info)
}
