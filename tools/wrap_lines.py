"""Bring the notebooks' code under 120 characters a line where a formatter cannot: after `ruff format`, wrap one-line
docstrings, split long string literals inside brackets into adjacent literals, and move a trailing comment that makes
a line too long onto its own line above. The code's meaning is unchanged (each cell is checked: same AST, docstrings
compared by their words).

    .venv/bin/ruff format nbs/ && .venv/bin/python tools/wrap_lines.py nbs/*.ipynb && .venv/bin/ruff format nbs/
"""
import argparse, ast, io, re, sys, textwrap, tokenize
from pathlib import Path

WIDTH = 120


def _string_parts(tok: str) -> tuple[str, str, str] | None:
    "(prefix, quote, body) of a one-line string literal, or None for triple-quoted or byte strings."
    m = re.fullmatch(r'([rRfF]*)(["\'])(.*)\2', tok, flags=re.S)
    if not m or tok.lstrip('rRfF').startswith(('"""', "'''")) or '\n' in tok:
        return None
    return m.group(1), m.group(2), m.group(3)


def _split_points(body: str, fstring: bool) -> list[int]:
    "Indices just after a space where `body` may be cut: outside {...} of an f-string, never after a backslash."
    depth, out = 0, []
    for i, ch in enumerate(body):
        if fstring and ch == '{':
            depth += 1
        elif fstring and ch == '}':
            depth -= 1
        elif ch == ' ' and depth == 0 and (i == 0 or body[i - 1] != '\\'):
            out.append(i + 1)
    return out


def _pieces(prefix, quote, body, first_room, room) -> list[str] | None:
    "The literal cut into adjacent literals: the first fits `first_room` characters, the others `room`."
    f = 'f' in prefix.lower()
    cuts, start, out, budget = _split_points(body, f), 0, [], first_room
    while len(body) - start + len(prefix) + 2 > budget:
        fit = [c for c in cuts if start < c and c - start + len(prefix) + 2 <= budget]
        if not fit:
            return None
        out.append(body[start : fit[-1]])
        start, budget = fit[-1], room
    out.append(body[start:])
    lit = lambda s: (prefix if not f or '{' in s else prefix.replace('f', '').replace('F', '')) + quote + s + quote
    return [lit(s) for s in out]


def _docstring_lines(line: str) -> list[str] | None:
    "A too-long one-line docstring as a wrapped triple-quoted one, or None when it cannot be done safely."
    indent = line[: len(line) - len(line.lstrip())]
    parts = _string_parts(line.strip())
    if parts is None or parts[0] or '\\' in parts[2] or '"""' in parts[2] or parts[2].endswith('"'):
        return None
    text = parts[2] if parts[1] == '"' else parts[2].replace("\\'", "'")
    lines = textwrap.wrap(text, WIDTH - len(indent) - 3, break_long_words=False, break_on_hyphens=False)
    lines[0] = '"""' + lines[0]
    lines[-1] += '"""'
    return [indent + s for s in lines]


# `name = (\n    value  # comment\n)`: how a formatter fits a long trailing comment; the comment goes above instead
_WRAPPED_COMMENT = re.compile(r'^( *)([^\n#]*?= )\(\n +([^\n#]*[^,\s])  (#[^\n]*)\n *\)$', re.M)


# `    last: int = 1\n):  # comment`: a formatter moves the last parameter's comment past the parenthesis, where the
# command-line help (fastcore's docments) no longer finds it; it goes back onto the parameter's line (or above it)
_LAST_PARAM_COMMENT = re.compile(r'^( +)(\*{0,2}\w+: [^\n#]*[^,\n\s])(,?)\n\)(:| ->[^\n#]*:)  (#[^\n]*)$', re.M)


def _last_param(m) -> str:
    line = f"{m[1]}{m[2]},  {m[5]}"
    return f"{line}\n){m[4]}" if len(line) <= WIDTH else f"{m[1]}{m[5]}\n{m[1]}{m[2]},\n){m[4]}"


def wrap_source(src: str) -> str:
    "One cell's code with its long lines wrapped as far as safely possible."
    unwrapped = _WRAPPED_COMMENT.sub(lambda m: f"{m[1]}{m[4]}\n{m[1]}{m[2]}{m[3]}", src)
    unwrapped = _LAST_PARAM_COMMENT.sub(_last_param, unwrapped)
    if unwrapped != src:
        _check_same(src, unwrapped)
        src = unwrapped
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
        tree = ast.parse(src)
    except (SyntaxError, tokenize.TokenError, IndentationError):
        return src  # magics or shell lines: left as they are
    docs = {n.body[0].lineno for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
            and isinstance(n.body[0].value.value, str) and n.body[0].lineno == n.body[0].end_lineno}
    lines = src.split('\n')
    depth_at, depth = {}, 0                                  # bracket depth at the start of each string token
    for t in toks:
        if t.type == tokenize.OP and t.string in '([{':
            depth += 1
        elif t.type == tokenize.OP and t.string in ')]}':
            depth -= 1
        elif t.type == tokenize.STRING:
            depth_at[t.start] = depth
    out = {}
    for t in toks:
        row = t.start[0]
        if row > len(lines):
            continue
        line = lines[row - 1]
        code_part = line[: t.start[1]].rstrip() if t.type == tokenize.COMMENT else line
        if row in out or (len(line) <= WIDTH and len(code_part) + 2 + len(t.string) * (t.type == tokenize.COMMENT) <= WIDTH):
            continue
        if t.type == tokenize.COMMENT and code_part.strip() and len(code_part) <= WIDTH:
            indent = line[: len(line) - len(line.lstrip())]
            out[row] = [indent + t.string, code_part]
        elif t.type == tokenize.STRING and row in docs and line.strip() == t.string:
            new = _docstring_lines(line)
            if new:
                out[row] = new
        elif t.type == tokenize.STRING and t.start[0] == t.end[0] and depth_at.get(t.start, 0) > 0:
            parts = _string_parts(t.string)
            if parts is None:
                continue
            head, tail = line[: t.start[1]], line[t.end[1] :]
            # alone on its line: the pieces line up under it; after code: they go one indent deeper than the line
            indent = line[: len(line) - len(line.lstrip())] + ' ' * 4 if head.strip() else head
            pieces = _pieces(*parts, WIDTH - len(head), WIDTH - len(indent) - len(tail))
            if not pieces or len(pieces) < 2:
                continue
            new = [head + pieces[0]] + [indent + p for p in pieces[1:]]
            new[-1] += tail
            if all(len(s) <= WIDTH for s in new):
                out[row] = new
    if not out:
        return src
    new_src = '\n'.join(s for i, line in enumerate(lines, 1) for s in out.get(i, [line]))
    _check_same(src, new_src)
    return new_src


def _check_same(a: str, b: str):
    "The rewritten cell must parse to the same program; docstrings may only change in their whitespace."
    norm = lambda s: re.sub(r'\s+', ' ', s).strip()
    def dump(src):
        t = ast.parse(src)
        for n in ast.walk(t):
            body = getattr(n, 'body', None)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and body \
                    and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body[0].value.value = norm(body[0].value.value)   # docstrings: only their line breaks may change
        return ast.dump(t)
    if dump(a) != dump(b):
        raise AssertionError(f"rewriting changed the code:\n{b}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('notebooks', nargs='+')
    a = ap.parse_args(argv)
    import nbformat
    for p in map(Path, a.notebooks):
        nb = nbformat.read(p, as_version=4)
        changed = 0
        for c in nb.cells:
            if c.cell_type == 'code':
                new = wrap_source(c.source)
                changed += new != c.source
                c.source = new
        if changed:
            nbformat.write(nb, p)
            print(f"{p.name}: {changed} cells wrapped", file=sys.stderr)


if __name__ == '__main__':
    main()
