// `dsocr man` and `dsocr completion bash`: the manual page and the bash completion, generated from the
// command-line parser itself, so they list exactly the commands and options this binary has. The
// build writes both next to the binary and installs them (share/man/man1, bash-completion).
#include <algorithm>
#include <cctype>
#include <memory>
#include <cstdio>
#include <string>
#include <vector>

#include "app/commands.h"
#include "core/version.h"

namespace dsocr::app {
namespace {

// roff text: backslashes escaped, hyphens as minus signs (so options can be searched and copied),
// no line starting with a control character.
std::string roff(const std::string& s) {
  std::string out;
  bool line_start = true;
  for (char c : s) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    if (c == '\\') out += "\\e";
    else if (c == '-') out += "\\-";
    else out += c;
    line_start = c == '\n';
  }
  return out;
}

std::vector<const CLI::App*> commands_of(const CLI::App& root) {
  std::vector<const CLI::App*> out;
  for (const CLI::App* sub : root.get_subcommands([](const CLI::App*) { return true; }))
    if (sub->get_name() != "man" && sub->get_name() != "completion") out.push_back(sub);
  std::sort(out.begin(), out.end(), [](const CLI::App* a, const CLI::App* b) { return a->get_name() < b->get_name(); });
  return out;
}

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool takes_value(const CLI::Option* o) { return o->get_expected_min() > 0; }

// "--mode MODE" / "-o, --out DIR" / "INPUTS..." as the option's heading.
std::string option_heading(const CLI::Option* o) {
  if (!o->nonpositional()) return "\\fI" + roff(upper(o->get_name())) + "\\fR" + (o->get_expected_max() > 1 ? "..." : "");
  std::string out;
  for (const std::string& s : o->get_snames()) out += (out.empty() ? "" : ", ") + std::string("\\fB\\-") + roff(s) + "\\fR";
  for (const std::string& l : o->get_lnames()) out += (out.empty() ? "" : ", ") + std::string("\\fB\\-\\-") + roff(l) + "\\fR";
  if (takes_value(o)) {
    std::string type = o->get_type_name();
    if (type.empty()) type = "VALUE";
    out += " \\fI" + roff(type) + "\\fR";
  }
  return out;
}

std::string option_text(const CLI::Option* o) {
  std::string text = o->get_description();
  const std::string def = o->get_default_str();
  if (!def.empty() && takes_value(o)) text += " (default: " + def + ")";
  return roff(text);
}

std::string manual(const CLI::App& root) {
  std::string m;
  m += ".TH DSOCR 1 \"\" \"dsocr " + std::string(kVersion) + "\" \"User Commands\"\n";
  m += ".SH NAME\ndsocr \\- DeepSeek\\-OCR as one native binary: page images and PDFs to markdown\n";
  m += ".SH SYNOPSIS\n.B dsocr\n\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]\n";
  m += ".SH DESCRIPTION\n" + roff(root.get_description()) + "\n";
  m += ".SH COMMANDS\n";
  for (const CLI::App* cmd : commands_of(root)) {
    std::string usage = "dsocr " + cmd->get_name();
    if (!cmd->get_options([](const CLI::Option* o) { return o->nonpositional(); }).empty()) usage += " [OPTIONS]";
    for (const CLI::Option* p : cmd->get_options([](const CLI::Option* o) { return !o->nonpositional(); }))
      usage += " " + upper(p->get_name()) + (p->get_expected_max() > 1 ? "..." : "");
    m += ".SS \"" + roff(usage) + "\"\n" + roff(cmd->get_description()) + "\n";
    for (const CLI::Option* o : cmd->get_options()) {
      if (o->get_name() == "--help" || o->get_lnames() == std::vector<std::string>{"help"}) continue;
      m += ".TP\n" + option_heading(o) + "\n" + option_text(o) + "\n";
    }
  }
  m += ".SH ENVIRONMENT\n";
  m += ".TP\n.B DSOCR_MODEL\nThe model directory when \\fB\\-\\-model\\fR is not given.\n";
  m += ".TP\n.B XDG_CACHE_HOME\nWhere \\fBdsocr pull\\fR stores models (default \\fI~/.cache/dsocr\\fR).\n";
  m += ".TP\n.B DSOCR_ISA\nCaps the CPU kernels chosen at start: \\fBavx512\\fR, \\fBavx2\\fR, \\fBbase\\fR (x86\\-64) or "
       "\\fBneon\\fR (arm64); \\fBdsocr info \\-\\-cpu\\fR shows the choice.\n";
  m += ".TP\n.B SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX\nThe shard of \\fB\\-\\-shard auto\\fR.\n";
  m += ".SH EXIT STATUS\n" + roff(kExitCodesHelp) + "\n";
  m += ".SH SEE ALSO\nThe README and docs/ of the dsocr source tree.\n";
  return m;
}

// A bash completion function: commands after `dsocr`, each command's options after it, file names
// for inputs and for option values.
std::string bash_completion(const CLI::App& root) {
  std::string names, cases;
  for (const CLI::App* cmd : commands_of(root)) {
    names += (names.empty() ? "" : " ") + cmd->get_name();
    std::string flags, valued;
    for (const CLI::Option* o : cmd->get_options([](const CLI::Option* o) { return o->nonpositional(); })) {
      std::string& list = takes_value(o) ? valued : flags;
      for (const std::string& s : o->get_snames()) list += " -" + s;
      for (const std::string& l : o->get_lnames()) list += " --" + l;
    }
    cases += "    " + cmd->get_name() + ")\n      flags=\"" + flags + "\"; valued=\"" + valued + "\" ;;\n";
  }
  std::string s;
  s += "# bash completion for dsocr " + std::string(kVersion) + " (generated by `dsocr completion bash`)\n";
  s += "_dsocr() {\n";
  s += "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd=\"\" i\n";
  s += "  for ((i = 1; i < COMP_CWORD; i++)); do\n";
  s += "    case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac\n";
  s += "  done\n";
  s += "  if [ -z \"$cmd\" ]; then\n";
  s += "    COMPREPLY=($(compgen -W \"" + names + " --help --version\" -- \"$cur\"))\n";
  s += "    return\n  fi\n";
  s += "  local flags=\"\" valued=\"\"\n";
  s += "  case $cmd in\n" + cases + "  esac\n";
  s += "  case \" $valued \" in *\" $prev \"*) COMPREPLY=($(compgen -f -- \"$cur\")); return ;; esac\n";
  s += "  if [[ $cur == -* ]]; then\n";
  s += "    COMPREPLY=($(compgen -W \"$flags $valued --help\" -- \"$cur\"))\n";
  s += "  else\n";
  s += "    COMPREPLY=($(compgen -f -- \"$cur\"))\n";
  s += "  fi\n";
  s += "}\n";
  s += "complete -o filenames -F _dsocr dsocr\n";
  return s;
}

}  // namespace

void add_docs_commands(CLI::App& app) {
  CLI::App* man = app.add_subcommand("man", "Print the manual page (roff) of this binary: dsocr man | man -l -");
  man->callback([&app] { std::fputs(manual(app).c_str(), stdout); });

  CLI::App* completion = app.add_subcommand(
      "completion", "Print a shell completion script: source <(dsocr completion bash)");
  auto shell = std::make_shared<std::string>();
  completion->add_option("shell", *shell, "The shell (bash)")->required()->check(CLI::IsMember({"bash"}));
  completion->callback([&app, shell] { std::fputs(bash_completion(app).c_str(), stdout); });
}

}  // namespace dsocr::app
