#!/usr/bin/env bash
# dsocr man and dsocr completion bash: generated from the parser, so every command and every option of
# the binary is in the manual page and in the completion; the page renders without groff warnings.
# Usage: docs.sh DSOCR_BIN TINY_MODEL_DIR TESTS_DATA_DIR
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL $*" >&2; exit 1; }

"$bin" man >"$tmp/dsocr.1"
head -1 "$tmp/dsocr.1" | grep -q '^\.TH DSOCR 1 ' || fail "man: no .TH line"
# The commands `dsocr --help` lists (the block after "Subcommands:").
commands=$("$bin" --help | awk '/^(SUBCOMMANDS|Subcommands):/ {on = 1; next} on && /^  [a-z]/ {print $1}')
[ "$(echo "$commands" | wc -w)" -ge 8 ] || fail "too few commands in --help: $commands"
for c in $commands; do
  [[ $c == man || $c == completion ]] && continue
  grep -qF ".SS \"dsocr ${c//-/\\-}" "$tmp/dsocr.1" || fail "man: command $c missing"
  # Every long option of the command is documented (roff writes - as \-).
  for o in $("$bin" "$c" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
    [ "$o" = --help ] && continue
    grep -qF -- "${o//-/\\-}" "$tmp/dsocr.1" || fail "man: $c $o missing"
  done
done
grep -q '^\.SH EXIT STATUS' "$tmp/dsocr.1" || fail "man: no EXIT STATUS section"
if command -v groff >/dev/null; then
  groff -man -Tutf8 -ww -z "$tmp/dsocr.1" 2>"$tmp/groff.err"
  [ ! -s "$tmp/groff.err" ] || fail "groff warnings: $(head -3 "$tmp/groff.err")"
  groff -man -Tascii -P-bcou "$tmp/dsocr.1" 2>/dev/null | grep -q -- '--kv-memory' || fail "rendered page lacks --kv-memory"
fi

"$bin" completion bash >"$tmp/dsocr.bash"
complete_words() {  # words...: what the completion offers for the last word
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _dsocr; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$tmp/dsocr.bash" "$@"
}
complete_words dsocr o | grep -qx ocr || fail "completion: 'dsocr o' does not offer ocr"
complete_words dsocr ocr --par | grep -qx -- --parallel || fail "completion: 'dsocr ocr --par' does not offer --parallel"
[ -z "$(complete_words dsocr ocr --zz)" ] || fail "completion offered something for an unknown option"
touch "$tmp/page-one.png"
complete_words dsocr ocr --out "$tmp/page-o" | grep -qx "$tmp/page-one.png" || fail "completion: no file for an option value"

if "$bin" completion zsh 2>"$tmp/err"; then fail "completion zsh accepted"; else rc=$?; fi
[ "$rc" = 2 ] || fail "completion zsh: exit $rc, want 2"
[ "$(wc -l <"$tmp/err")" = 1 ] || fail "completion zsh: not a one-line error"
echo "docs: man page and completion cover $(echo "$commands" | wc -w) commands"
