#!/usr/bin/env python3
"""Normalize a plain-text `pg_dump --schema-only` file into canonical text.

Used by scripts/corpus.sh to decide whether two schemas are equal.

    dumpnorm.py DUMP                 print the canonical form of DUMP to stdout
    dumpnorm.py DUMP -o OUT          write it to OUT instead
    dumpnorm.py A B -o A.n -o B.n    several files at once (one -o per input)
    dumpnorm.py --keep-column-order DUMP
                                     the same, but each CREATE TABLE keeps its
                                     elements in the dump's order (corpus.sh uses
                                     both forms to tell a difference in column
                                     order alone from any other difference)

Rules (outside of quoted text only):
  * dropped: comment lines (`--...`), blank lines, `SET ...;` lines,
    `SELECT pg_catalog.set_config(...);` lines, psql meta-commands
    (lines starting with a backslash, e.g. `\\restrict KEY`);
  * the rest is split into statements: a statement ends with a `;` at the
    end of a line that is not inside a single-quoted string, an E'' string,
    a double-quoted identifier or a dollar-quoted body ($$...$$, $tag$...$tag$);
  * in CREATE [UNLOGGED|FOREIGN] TABLE statements the elements between the
    opening `(` line and the closing `)` line (columns and constraints, one
    per line, trailing comma) are sorted, so column order does not matter
    (unless --keep-column-order: then only the trailing comma is dropped);
  * statements are compared as a multiset: the output is the sorted list.
Python 3.11 standard library only.
"""

import argparse
import re
import sys

IDENT_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\U0010ffff]")
DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")
SET_LINE = re.compile(r"^SET\s+\S.*;\s*$")
SET_CONFIG_LINE = re.compile(r"^SELECT\s+pg_catalog\.set_config\(.*\);\s*$")
CREATE_TABLE = re.compile(r"^CREATE\s+(?:(?:UNLOGGED|FOREIGN)\s+)?TABLE\s")


class Scanner:
    """Tracks the lexical state (quotes) across lines."""

    def __init__(self):
        self.mode = None  # None | "'" | "E" | '"' | "$"
        self.tag = ""  # dollar-quote delimiter including the dollars

    def scan(self, line):
        """Advance over one line (without its newline).

        Returns the line's code text with a trailing `--` comment removed
        (only meaningful for the end-of-statement check)."""
        i, n = 0, len(line)
        code_end = n
        while i < n:
            c = line[i]
            if self.mode is None:
                if c == "'":
                    prev = line[i - 1] if i > 0 else ""
                    before = line[i - 2] if i > 1 else ""
                    if prev in ("E", "e") and not IDENT_CHAR.match(before or " "):
                        self.mode = "E"
                    else:
                        self.mode = "'"
                    i += 1
                elif c == '"':
                    self.mode = '"'
                    i += 1
                elif c == "$":
                    prev = line[i - 1] if i > 0 else ""
                    m = DOLLAR_TAG.match(line, i)
                    if m and not (prev and IDENT_CHAR.match(prev)):
                        self.mode = "$"
                        self.tag = m.group(0)
                        i = m.end()
                    else:
                        i += 1
                elif c == "-" and line.startswith("--", i):
                    code_end = i
                    break
                else:
                    i += 1
            elif self.mode == "'":
                if c == "'":
                    if line.startswith("''", i):
                        i += 2
                    else:
                        self.mode = None
                        i += 1
                else:
                    i += 1
            elif self.mode == "E":
                if c == "\\":
                    i += 2
                elif c == "'":
                    if line.startswith("''", i):
                        i += 2
                    else:
                        self.mode = None
                        i += 1
                else:
                    i += 1
            elif self.mode == '"':
                if c == '"':
                    if line.startswith('""', i):
                        i += 2
                    else:
                        self.mode = None
                        i += 1
                else:
                    i += 1
            else:  # dollar quote
                j = line.find(self.tag, i)
                if j < 0:
                    i = n
                else:
                    self.mode = None
                    i = j + len(self.tag)
        return line[:code_end]

    @property
    def quoted(self):
        return self.mode is not None


def split_statements(text):
    """Returns a list of statements; each is a list of (line, quoted_at_end)."""
    sc = Scanner()
    stmts = []
    cur = []
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if not sc.quoted:
            s = line.strip()
            if not cur:
                if (
                    not s
                    or s.startswith("--")
                    or line.startswith("\\")
                    or SET_LINE.match(s)
                    or SET_CONFIG_LINE.match(s)
                ):
                    continue
            elif not s or s.startswith("--"):
                continue
        code = sc.scan(line)
        cur.append((line, sc.quoted))
        if not sc.quoted and code.rstrip().endswith(";"):
            stmts.append(cur)
            cur = []
    if cur:
        stmts.append(cur)
    return stmts


def canon_statement(lines, sort_columns=True):
    text_lines = [l for l, _ in lines]
    if not CREATE_TABLE.match(text_lines[0]) or not text_lines[0].rstrip().endswith("("):
        return "\n".join(text_lines)
    # locate the closing line: first line starting with ')' at top level
    close = None
    for k in range(1, len(lines)):
        if text_lines[k].startswith(")") and not lines[k - 1][1]:
            close = k
            break
    if close is None:
        return "\n".join(text_lines)
    elems, cur = [], []
    for line, quoted in lines[1:close]:
        cur.append(line)
        if not quoted and line.rstrip().endswith(","):
            elems.append(cur)
            cur = []
    if cur:
        elems.append(cur)
    norm = []
    for e in elems:
        e = list(e)
        e[-1] = e[-1].rstrip()
        if e[-1].endswith(","):
            e[-1] = e[-1][:-1]
        norm.append("\n".join(e))
    if sort_columns:
        norm.sort()
    return "\n".join([text_lines[0]] + norm + text_lines[close:])


def normalize(text, sort_columns=True):
    stmts = [canon_statement(s, sort_columns) for s in split_statements(text)]
    stmts.sort()
    return "".join(s + "\n" for s in stmts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dump", nargs="+", help="pg_dump plain-text file ('-' = stdin)")
    ap.add_argument("-o", "--output", action="append", default=[],
                    help="output file, one per input (default: stdout)")
    ap.add_argument("--keep-column-order", action="store_true",
                    help="do not sort the elements of CREATE TABLE statements")
    args = ap.parse_args(argv)
    if args.output and len(args.output) != len(args.dump):
        ap.error("give one -o per input file")
    sys.stdout.reconfigure(errors="surrogateescape")
    for k, path in enumerate(args.dump):
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        out = normalize(text, sort_columns=not args.keep_column_order)
        if args.output:
            with open(args.output[k], "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(out)
        else:
            sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
