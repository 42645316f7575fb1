#!/usr/bin/python3
"""ucd_explore.py -- the Unicode store of `make demo`, explored from Python.

    PYTHONPATH=build/python /usr/bin/python3 python/ucd_explore.py build/ucd.mms [BLOCK]

A new interpreter opens the store that examples/ucd.c built, read-only, and
answers two of the questions `ucd query` answers in C -- characters per
general category, and the characters of a block with their names -- from
numpy views of the mapped tables. Nothing is parsed and no Python object is
made per record: the category count is one numpy.bincount over the char
table's category refs (a ref's low 48 bits are the record's index), and only
the strings printed are decoded.

The tables (see examples/ucd.c): char (cp, name, category -> category,
block -> block, script -> script, ...), category (code chars[2], name),
block (first, last, name), script, range (private-use and surrogate ranges).
"""
import sys
import time

t_start = time.perf_counter()
import numpy as np  # noqa: E402

t_numpy = time.perf_counter()
import mmstore  # noqa: E402

t_mmstore = time.perf_counter()


def loose(name):
    """Block names compare loosely (UAX #44 LM3): case, spaces, '-', '_'."""
    return "".join(ch for ch in name.lower() if ch not in " -_")


def glyph(cp, category_code):
    """As ucd.c shows a character: letters, numbers, punctuation and symbols
    as themselves, marks on a dotted circle, nothing for the rest."""
    if category_code[:1] in b"LNPS":
        return chr(cp)
    if category_code[:1] == b"M":
        return "\u25cc" + chr(cp)
    return ""


def categories(chars, cats, ranges):
    c = chars.array()
    n_cats = len(cats)
    # A ref's index is its low 48 bits; bincount wants signed integers.
    counts = np.bincount((c["category"] & mmstore.SLOT_MASK).astype(np.intp), minlength=n_cats)
    # Most first; ties in category order (a stable sort), as ucd.c sorts.
    order = np.argsort(-counts, kind="stable")
    code, name = cats.column("code"), cats.column("name")
    print(f"characters per general category, top 10 of {n_cats}:")
    for k in order[:10]:
        print(f"    {code[k].decode()} {name[k]:<22} {counts[k]:7}")
    r = ranges.array()
    in_ranges = np.bincount((r["category"] & mmstore.SLOT_MASK).astype(np.intp),
                            weights=r["last"].astype(np.int64) - r["first"] + 1,
                            minlength=n_cats).astype(np.int64)
    if len(r):
        print("    and code points in ranges (private use, surrogates): " +
              ", ".join(f"{code[k].decode()} {in_ranges[k]}" for k in np.flatnonzero(in_ranges)))


def block(chars, cats, blocks, wanted):
    names = blocks.column("name")
    matches = [i for i, n in enumerate(names) if loose(n) == loose(wanted)]
    if not matches:
        print(f"block {wanted}: no such block")
        return
    b = matches[0]
    rec = blocks.array()[b]
    c = chars.array()
    # The block's characters are one run of the char table (code point
    # order): its records are those whose block ref is this block.
    members = np.flatnonzero(c["block"] == blocks.ref(b))
    print(f"block {names[b]} U+{rec['first']:04X}..U+{rec['last']:04X}: "
          f"{len(members)} characters")
    cat_code = cats.column("code")
    cat_of = c["category"][members] & mmstore.SLOT_MASK
    shown = [g for g in (glyph(int(cp), cat_code[k])
                         for cp, k in zip(c["cp"][members], cat_of)) if g][:128]
    for i in range(0, len(shown), 32):
        print("    " + "".join(shown[i:i + 32]))
    for i in members[:12]:
        print(f"    U+{c['cp'][i]:04X} {chars.str(int(i), 'name')}")
    if len(members) > 12:
        print(f"    ... and {len(members) - 12} more names")


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    path = sys.argv[1]
    wanted = sys.argv[2] if len(sys.argv) == 3 else "Emoticons"
    t0 = time.perf_counter()
    s = mmstore.open(path, readonly=True)
    chars, cats = s.table("char"), s.table("category")
    blocks, ranges = s.table("block"), s.table("range")
    with s.read():
        chars.array()  # the first view: every char record, zero-copy
        t1 = time.perf_counter()
        print(f"opened {path} read-only from Python: UCD {s.string(s.root)}, {len(chars)} chars, "
              f"{len(ranges)} ranges, {len(blocks)} blocks")
        print(f"    open + tables + view of the char table: {(t1 - t0) * 1e6:.0f} us "
              f"(import numpy {(t_numpy - t_start) * 1e3:.0f} ms, "
              f"import mmstore {(t_mmstore - t_numpy) * 1e6:.0f} us)")
        a = time.perf_counter()
        categories(chars, cats, ranges)
        print(f"    ({(time.perf_counter() - a) * 1e6:.0f} us)")
        a = time.perf_counter()
        block(chars, cats, blocks, wanted)
        print(f"    ({(time.perf_counter() - a) * 1e6:.0f} us)")
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
