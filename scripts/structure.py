#!/usr/bin/env python3
"""How easy the code is to live in, as figures (issue 14's yardsticks).

    scripts/structure.py            print the figures and what exceeds each limit
    scripts/structure.py --check    the same; exit 1 when anything exceeds a limit

Figures, for src/:
  * files over 800 lines;
  * functions over 150 lines (from a `fn` line to its closing brace; braces inside strings,
    character literals and comments do not count);
  * object-kind string literals outside src/catalog/ (where kinds are spelled, in kind.rs, and
    where SQL is read, whose keywords share those spellings) and src/archive/ (which renders
    pg_restore's text from the archive's entry descriptions before any catalog exists): a
    literal spelled exactly like a kind kind.rs lists ("TABLE", "FK CONSTRAINT", ...) and used
    as a kind: compared, matched in a match arm, or given as a `kind:` (where a kind should be an
    `ObjectKind`); the same word as a keyword of SQL being read or written is not counted;
  * tokenizer and parser calls outside src/catalog/: `tokens(`, `split_script(`, `pg_query::`
    (only the catalog reads SQL text).
Python 3 standard library only.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
FILE_LIMIT = 800
FN_LIMIT = 150
FN_LINE = re.compile(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")
# A literal used as a kind: compared (`kind == "TABLE"`), matched (`"TABLE" =>`, `"TABLE" |`,
# `| "TABLE"`), or given as a kind (`kind: "TABLE"`). The same word inside SQL being written or
# read (`&["TRIGGER"]`, `format!("DROP INDEX ...")`) is a keyword, not a kind.
KIND_USE = re.compile(
    r'(?:(?:==|!=|kind:)\s*"(?P<lit>[A-Z][A-Z ]*[A-Z])")'
    r'|(?:\|\s*"(?P<lit2>[A-Z][A-Z ]*[A-Z])")'
    r'|(?:(?m:^)\s*"(?P<lit3>[A-Z][A-Z ]*[A-Z])"\s*(?:=>|\||if\b))'
)
TOKENIZER = re.compile(r"\b(?:tokens|split_script)\(|\bpg_query::")


def code_only(text):
    """The text with comments, strings and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = '"' + hashes
            j = text.find(end, i + 2 + len(hashes))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(?:\\.|\\u\{[0-9a-fA-F]+\}|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def long_functions(path, text):
    code = code_only(text).split("\n")
    found = []
    for k, line in enumerate(code):
        m = FN_LINE.match(line)
        if not m:
            continue
        depth, opened = 0, False
        for j in range(k, len(code)):
            for ch in code[j]:
                if ch == "{":
                    depth += 1
                    opened = True
                elif ch == "}":
                    depth -= 1
                elif ch == ";" and not opened and depth == 0:
                    break  # a declaration without a body
            else:
                if opened and depth == 0:
                    length = j - k + 1
                    if length > FN_LIMIT:
                        found.append((length, f"{path}:{k + 1} fn {m.group(1)}"))
                    break
                continue
            break
    return found


def kind_spellings():
    text = (SRC / "catalog" / "kind.rs").read_text()
    return set(re.findall(r'=> "([A-Z][A-Z ]*)",', text))


def code_comments_blanked(text):
    out = re.sub(r"//[^\n]*", lambda m: " " * len(m.group(0)), text)
    return out


def main():
    check = "--check" in sys.argv[1:]
    files = sorted(SRC.rglob("*.rs"))
    kinds = kind_spellings() if (SRC / "catalog" / "kind.rs").exists() else set()
    big_files, long_fns, kind_literals, tokenizer_calls = [], [], [], []
    for f in files:
        rel = f.relative_to(ROOT)
        text = f.read_text()
        lines = text.count("\n")
        if lines > FILE_LIMIT:
            big_files.append((lines, str(rel)))
        long_fns += long_functions(rel, text)
        # kind.rs is where kinds are spelled; src/archive/ renders pg_restore's text from the
        # archive's own entry descriptions (bytes in, text out, before any catalog exists).
        if rel.parts[:2] in (("src", "catalog"), ("src", "archive")):
            continue
        blanked = code_comments_blanked(text)
        # Tests inside a file are not the code's shape: stop at `mod tests`.
        cut = re.search(r"#\[cfg\(test\)\]\s*mod tests", blanked)
        body = blanked[: cut.start()] if cut else blanked
        for m in KIND_USE.finditer(body):
            group = next(g for g in ("lit", "lit2", "lit3") if m.group(g))
            lit = m.group(group)
            if lit in kinds:
                line = body.count("\n", 0, m.start(group)) + 1
                kind_literals.append(f"{rel}:{line} \"{lit}\"")
        if rel.parts[:2] != ("src", "catalog"):
            code = code_only(text)
            cut = re.search(r"#\[cfg\(test\)\]\s*mod tests", code)
            code = code[: cut.start()] if cut else code
            for m in TOKENIZER.finditer(code):
                line = code.count("\n", 0, m.start()) + 1
                tokenizer_calls.append(f"{rel}:{line} {m.group(0)}")
    total = sum(f.read_text().count("\n") for f in files)
    print(f"src: {len(files)} files, {total} lines")
    print(f"files over {FILE_LIMIT} lines: {len(big_files)}")
    for n, p in sorted(big_files, reverse=True):
        print(f"  {n:5} {p}")
    print(f"functions over {FN_LIMIT} lines: {len(long_fns)}")
    for n, p in sorted(long_fns, reverse=True):
        print(f"  {n:5} {p}")
    print(f"object-kind string literals outside src/catalog/: {len(kind_literals)}")
    for k in kind_literals:
        print(f"  {k}")
    print(f"tokenizer/parser calls outside src/catalog/: {len(tokenizer_calls)}")
    for t in tokenizer_calls:
        print(f"  {t}")
    bad = big_files or long_fns or kind_literals or tokenizer_calls
    return 1 if check and bad else 0


if __name__ == "__main__":
    sys.exit(main())
