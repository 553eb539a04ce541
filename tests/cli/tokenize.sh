#!/usr/bin/env bash
# dsocr tokenize / detokenize against known ids, and exact round trips through the binary.
# Usage: tokenize.sh DSOCR_BIN TINY_MODEL_DIR TESTS_DATA_DIR
set -euo pipefail
bin=$1 model=$2

expect_eq() {  # name actual expected
  if [[ "$2" != "$3" ]]; then
    printf 'FAIL %s\n  got:      %q\n  expected: %q\n' "$1" "$2" "$3" >&2
    exit 1
  fi
}

ids=$(printf '\n<|grounding|>Convert the document to markdown.' | "$bin" tokenize --model "$model")
expect_eq "document prompt ids" "$ids" "[201,128820,21842,270,4940,304,2121,7919,16]"

ids=$(printf '日本語のテキスト' | "$bin" tokenize --model "$model")
expect_eq "japanese ids" "$ids" "$(printf '日本語のテキスト' | "$bin" tokenize --model "$model/tokenizer.json")"

text=$(printf '[0,19923,2058,1]' | "$bin" detokenize --model "$model")
expect_eq "detokenize keeps special tokens" "$text" "<｜begin▁of▁sentence｜>Hello world<｜end▁of▁sentence｜>"
text=$(printf '[0, 19923, 2058, 129279, 1]' | "$bin" detokenize --model "$model" --skip-special)
expect_eq "detokenize --skip-special, unknown id skipped" "$text" "Hello world"

# Round trip, byte for byte (trailing newlines included: compare files, not $(...)).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '# Title\n\n| a | b |\n|---|---|\n| 1½ | 中文 |\n<td>x</td> \xf0\x9f\x9a\x80  \n\n' >"$tmp/in.txt"
"$bin" tokenize --model "$model" <"$tmp/in.txt" >"$tmp/ids.json"
"$bin" detokenize --model "$model" <"$tmp/ids.json" >"$tmp/out.txt"
cmp "$tmp/in.txt" "$tmp/out.txt"

# Errors are one line on stderr and exit status 1.
if printf '[1, "x"]' | "$bin" detokenize --model "$model" 2>"$tmp/err"; then
  echo "FAIL detokenize accepted a non-integer id" >&2; exit 1
fi
expect_eq "bad id message" "$(cat "$tmp/err")" 'dsocr: error: stdin: element 1 ("x") is not a 32-bit integer token id'
if printf 'hi' | "$bin" tokenize --model "$tmp" 2>"$tmp/err"; then
  echo "FAIL tokenize accepted a directory without tokenizer.json" >&2; exit 1
fi
expect_eq "missing tokenizer message" "$(cat "$tmp/err")" "dsocr: error: $tmp/tokenizer.json: cannot open: No such file or directory"
echo "tokenize: all checks passed"
