#include "app/commands.h"
namespace dsocr::app {
void add_synth_checkpoint_command(CLI::App&) {}  // TODO(synth)
}
