#!/usr/bin/python3
"""Generates lockstep's single-instruction conformance corpus (tests/corpus/*.jsonl).

The reference ("oracle") is Unicorn 2 (Debian's python3-unicorn) in 32-bit x86
mode: flat segments (base 0, limit 4 GiB), protected mode, CPL 0, paging off.
Every case is built from a seeded RNG, so a run with the same --seed writes
the same bytes. Each form (e.g. "add r/m32,r32 (mem)") has its own RNG,
seeded from the global seed and the form's name, so any subset of forms
(--form, --sample) is generated exactly as in a full run.

Run with Debian's interpreter (apt-get install -y python3-unicorn):

    /usr/bin/python3 tests/corpus/generate.py                  # whole corpus
    /usr/bin/python3 tests/corpus/generate.py --sample 0.02 --sample-seed 7 --out /tmp/x
    /usr/bin/python3 tests/corpus/generate.py --form "add r/m8,r8 (reg)" --out /tmp/x
    /usr/bin/python3 tests/corpus/generate.py --list-forms
    /usr/bin/python3 tests/corpus/generate.py --verify tests/corpus/samples/*.jsonl

One case: the registers, EFLAGS and small memory windows (16-64 bytes) are
filled with a mix of edge values (0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000,
0xffff, 0x7fffffff, 0x80000000, 0xffffffff, ...) and random ones; the
instruction is placed at EIP 0x100800; Unicorn runs exactly one instruction
(count=1; a REP string instruction is re-entered until EIP leaves it, i.e. all
of its iterations). Registers, EFLAGS, EIP and the windows are read back.
Every data access Unicorn makes is checked to fall inside a window (the
format says memory outside the windows is not part of the case), and every
case must end without an exception other than #DE. A divide error
(vector 0, caught by an interrupt hook) is written as "exception":"DE" with
final == init (EIP at the instruction).

Initial EFLAGS: bit 1 set, CF PF AF ZF SF OF DF random, IF and TF clear.

flags_mask rules (Intel SDM, "Flags Affected" of each instruction). The mask
holds the status flags the SDM defines for the instruction -- set to a
defined value or "unaffected" (unchanged is a defined result) -- and DF.
Flags the SDM calls "undefined" are left out. With ALL = CF PF AF ZF SF OF DF:
  - ADD ADC SUB SBB CMP NEG XADD CMPXCHG, CMPS/SCAS: ALL.
  - AND OR XOR TEST: ALL but AF (AF undefined).
  - INC DEC: ALL (CF unaffected). NOT: ALL (no flag affected).
  - SHL/SAL SHR SAR (masked count c = count & 31):
      c == 0: ALL (nothing changes);
      else CF PF ZF SF DF, plus OF only when c == 1 (AF undefined); for SHL
      and SHR CF is undefined when c >= operand size, so it is left out.
  - ROL ROR RCL RCR: c == 0: ALL; else CF PF AF ZF SF DF (SF ZF AF PF
      unaffected), plus OF only when c == 1. (ROL/ROR set CF even when
      c mod size == 0; RCL/RCR rotate by c mod 9 / mod 17 for 8/16 bits and
      leave CF unchanged when that is 0 -- all defined.)
  - SHLD SHRD: c == 0: ALL; else CF PF ZF SF DF, plus OF when c == 1. For
      16-bit forms with c > 16 the result and all flags are undefined: the
      mask is DF only and the destination is listed in "undef".
  - MUL IMUL (1-, 2- and 3-operand): CF OF DF.
  - DIV IDIV: DF only (CF OF SF ZF AF PF undefined).
  - any case that raises #DE (DIV, IDIV, AAM 0): ALL (final == init).
  - BT BTS BTR BTC: CF ZF DF (ZF unaffected; OF SF AF PF undefined).
  - BSF BSR: ZF DF; with a zero source the destination is undefined and
      is listed in "undef".
  - DAA DAS: CF AF SF ZF PF DF (OF undefined).
  - AAA AAS: CF AF DF (OF SF ZF PF undefined).
  - AAM AAD: SF ZF PF DF (OF AF CF undefined).
  - CMPXCHG8B: ALL (ZF set, the others unaffected).
  - everything else here (MOV, LEA, XCHG, BSWAP, CMOVcc, SETcc, jumps, CALL,
    RET, LOOPcc, PUSH/POP, PUSHA/POPA, PUSHF, POPF, LAHF, SAHF, CLC STC CMC
    CLD STD, string moves/loads/stores, XLAT, CBW..CDQ, ENTER, LEAVE, NOP,
    SALC): ALL -- they either write a defined value or leave the flag alone.

Where Unicorn 2.0.1 is known to be wrong on defined results, the corpus
steps around it (see docs/conformance-corpus.md):
  - RET imm16 sign-extends imm16 (silicon zero-extends): imm16 < 0x8000 only.
  - LOCK NEG m32 computes OF SF ZF AF PF from the wrong value: its mask is
    CF DF only (plain NEG is fully checked).
  - with memory hooks installed some results are wrong (SHL/SHR m,CL flags,
    ENTER's copied frame pointers): results come from a hook-free run; a
    second, hooked run only checks where the instruction reads and writes.
  - TEST r/m,imm (F6/F7 /1, an undocumented alias) is #UD: not generated.

Output: one file per instruction group, each under 3 MiB; lines are the
shared format (docs in shared/formats/cpu-test-case.md) plus the provenance
fields "oracle" and "seed".
"""

import argparse
import json
import math
import multiprocessing
import os
import random
import sys
import time

try:
    import unicorn
    from unicorn import Uc, UcError, UC_ARCH_X86, UC_MODE_32, UC_HOOK_INTR, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE
    from unicorn import x86_const as X
except ImportError:  # reported by main()
    unicorn = None

DEFAULT_SEED = 1
OUT_DEFAULT = os.path.dirname(os.path.abspath(__file__))

CF, PF, AF, ZF, SF, TF, IF, DF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x100, 0x200, 0x400, 0x800
ALL = CF | PF | AF | ZF | SF | OF | DF           # 0xcd5
LOGIC = ALL & ~AF                                # 0xcc5
MULM = CF | OF | DF                              # 0xc01
DIVM = DF                                        # 0x400
BTM = CF | ZF | DF                               # 0x441
BSM = ZF | DF                                    # 0x440

M32 = 0xFFFFFFFF
CODE = 0x100800          # the instruction
DATA = 0x200800          # data windows (32-bit addressing)
DATA2 = 0x200C00         # second data window (string destination...)
STK = 0x201000           # stack window
DATA16 = 0x8800          # data windows for 16-bit addressing (EA < 64 KiB)
DATA16B = 0x8C00
RAM = 4 << 20

REGS = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"]
EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI = range(8)
UC_REGS = None  # filled lazily (needs unicorn)

EDGE32 = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
          2, 0xFE, 0x100, 0xFFFE, 0x10000, 0xFFFFFFFE, 0x80000001]
EDGE = {
    1: [0, 1, 0x7F, 0x80, 0xFF, 0xFE, 0x81, 0x0F, 0x10],
    2: [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0xFFFE, 0x8001, 0x100],
    4: EDGE32,
}
MASK = {1: 0xFF, 2: 0xFFFF, 4: M32}
CONDS = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"]


# ---------------------------------------------------------------- values

def rval(rng):
    """A value for a register that is not an operand."""
    p = rng.random()
    if p < 0.35:
        return rng.choice(EDGE32)
    if p < 0.45:
        return rng.getrandbits(8)
    if p < 0.55:
        return rng.getrandbits(16)
    return rng.getrandbits(32)


def opv(rng, size):
    """An operand value of `size` bytes: edge values, small ones, random ones."""
    p = rng.random()
    if p < 0.45:
        return rng.choice(EDGE[size])
    if p < 0.55:
        return rng.randrange(0, 17)
    if p < 0.65 and size > 1:
        return rng.getrandbits(8 * size - 8) | (rng.getrandbits(1) << (8 * size - 1))
    return rng.getrandbits(8 * size)


def rflags(rng):
    f = 2
    for b in (CF, PF, AF, ZF, SF, OF, DF):
        if rng.random() < 0.5:
            f |= b
    return f


def le(v, n):
    return (v & ((1 << (8 * n)) - 1)).to_bytes(n, "little")


def sx(v, size):
    bits = 8 * size
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


# ---------------------------------------------------------------- a case

class Window:
    __slots__ = ("addr", "data")

    def __init__(self, addr, data):
        self.addr = addr
        self.data = bytearray(data)


class Case:
    def __init__(self, rng):
        self.rng = rng
        self.regs = [rval(rng) for _ in range(8)]
        self.flags = rflags(rng)
        self.code = b""
        self.windows = []
        self.mask = ALL
        self.undef_regs = []
        self.undef_mem = []
        self.rep = False

    # memory windows
    def win(self, addr, n, fill=None):
        if fill is None:
            fill = bytes(self.rng.getrandbits(8) for _ in range(n))
        w = Window(addr, fill)
        for o in self.windows:
            if addr < o.addr + len(o.data) and o.addr < addr + n:
                raise ValueError("overlapping windows")
        self.windows.append(w)
        return w

    def _find(self, addr, size):
        for w in self.windows:
            if w.addr <= addr and addr + size <= w.addr + len(w.data):
                return w
        raise ValueError("address 0x%x+%d is outside the windows" % (addr, size))

    def put(self, addr, size, v):
        w = self._find(addr, size)
        o = addr - w.addr
        w.data[o:o + size] = le(v, size)

    def get(self, addr, size):
        w = self._find(addr, size)
        o = addr - w.addr
        return int.from_bytes(w.data[o:o + size], "little")

    # registers by operand size (8-bit numbers: AL CL DL BL AH CH DH BH)
    def setr(self, n, size, v):
        if size == 4:
            self.regs[n] = v & M32
        elif size == 2:
            self.regs[n] = (self.regs[n] & 0xFFFF0000) | (v & 0xFFFF)
        else:
            r, sh = n & 3, (8 if n >= 4 else 0)
            self.regs[r] = (self.regs[r] & ~(0xFF << sh) & M32) | ((v & 0xFF) << sh)

    def getr(self, n, size):
        if size == 4:
            return self.regs[n]
        if size == 2:
            return self.regs[n] & 0xFFFF
        return (self.regs[n & 3] >> (8 if n >= 4 else 0)) & 0xFF


def full_reg(n, size):
    """The 32-bit register an operand-size register number lives in."""
    return n & 3 if size == 1 else n


def pick_reg(rng, reserved, size=4):
    cands = [n for n in range(8) if full_reg(n, size) not in reserved]
    return rng.choice(cands)


# ---------------------------------------------------------------- addressing

KINDS32 = ["ind", "d32", "d8", "dd32", "sib0", "sib8", "sib32", "noidx", "nobase", "d32sib"]
A16REGS = {0: (EBX, ESI), 1: (EBX, EDI), 2: (EBP, ESI), 3: (EBP, EDI), 4: (ESI,), 5: (EDI,), 6: (EBP,), 7: (EBX,)}
A16NAMES = {0: "bx+si", 1: "bx+di", 2: "bp+si", 3: "bp+di", 4: "si", 5: "di", 6: "bp", 7: "bx"}


def spec32(rng, reserved=(), kind=None, **fixed):
    """A random 32-bit addressing form avoiding `reserved` registers.
    Returns (mod, rm, sib) with sib = (scale, index, base) or None."""
    kind = kind or rng.choice(KINDS32)
    free = [r for r in range(8) if r not in reserved]
    nosp = [r for r in free if r != ESP]
    scale = fixed.get("scale", rng.randrange(4))
    if kind == "ind":
        c = [r for r in nosp if r != EBP]
        return (0, fixed.get("rm", rng.choice(c)), None) if c else (0, 5, None)
    if kind == "d32":
        return (0, 5, None)
    if kind in ("d8", "dd32"):
        if not nosp:
            return (0, 5, None)
        return (1 if kind == "d8" else 2, fixed.get("rm", rng.choice(nosp)), None)
    if kind in ("sib0", "sib8", "sib32"):
        mod = {"sib0": 0, "sib8": 1, "sib32": 2}[kind]
        bases = [r for r in free if not (mod == 0 and r == EBP)]
        if not bases or not nosp:
            return (0, 5, None)
        return (mod, 4, (scale, fixed.get("index", rng.choice(nosp)), fixed.get("base", rng.choice(bases))))
    if kind == "noidx":
        mod = fixed.get("mod", rng.randrange(3))
        bases = [r for r in free if not (mod == 0 and r == EBP)]
        if not bases:
            return (0, 5, None)
        return (mod, 4, (scale, 4, fixed.get("base", rng.choice(bases))))
    if kind == "nobase":
        if not nosp:
            return (0, 5, None)
        return (0, 4, (scale, fixed.get("index", rng.choice(nosp)), 5))
    if kind == "d32sib":
        return (0, 4, (scale, 4, 5))
    raise ValueError(kind)


def spec16(rng, reserved=()):
    while True:
        mod, rm = rng.randrange(3), rng.randrange(8)
        if mod == 0 and rm == 6:
            return (mod, rm)
        if not any(r in reserved for r in A16REGS[rm]):
            return (mod, rm)


def rdisp(rng, mod):
    if mod == 1:
        return sx(rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.getrandbits(8), rng.getrandbits(8)]), 1)
    if mod == 2:
        p = rng.random()
        if p < 0.2:
            return sx(rng.choice([0, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100]), 4)
        if p < 0.6:
            return rng.randrange(-0x1000, 0x1000)
        return sx(rng.getrandbits(32), 4)
    return 0


def idxval(rng):
    return rng.randrange(0, 64) if rng.random() < 0.5 else rval(rng)


def addr32(c, spec, regf, ea):
    """Encodes ModRM(+SIB+disp) for `spec` and sets the registers so the
    effective address is ea (or ea+1, returned, when parity forces it)."""
    rng = c.rng
    mod, rm, sib = spec
    modrm = (mod << 6) | (regf << 3) | rm
    if mod == 0 and rm == 5:
        return bytes([modrm]) + le(ea, 4), ea
    dbytes = {0: 0, 1: 1, 2: 4}[mod]
    if sib is None:
        disp = rdisp(rng, mod)
        c.regs[rm] = (ea - disp) & M32
        return bytes([modrm]) + le(disp, dbytes), ea
    scale, index, base = sib
    sb = bytes([modrm, (scale << 6) | (index << 3) | base])
    s = 1 << scale
    if mod == 0 and base == 5:  # no base: [index*s + disp32]
        if index == 4:
            return sb + le(ea, 4), ea
        iv = idxval(rng)
        c.regs[index] = iv
        return sb + le((ea - iv * s) & M32, 4), ea
    disp = rdisp(rng, mod)
    if index == 4:
        c.regs[base] = (ea - disp) & M32
    elif index == base:  # base + base*s = (1+s) * v
        k = 1 + s
        t = (ea - disp) & M32
        if k == 2:
            if t & 1:
                ea += 1
                t = (t + 1) & M32
            v = (t >> 1) | (rng.getrandbits(1) << 31)
        else:
            v = (t * pow(k, -1, 1 << 32)) & M32
        c.regs[base] = v
    else:
        iv = idxval(rng)
        c.regs[index] = iv
        c.regs[base] = (ea - disp - iv * s) & M32
    return sb + le(disp, dbytes), ea


def addr16(c, spec, regf, ea):
    rng = c.rng
    mod, rm = spec
    modrm = (mod << 6) | (regf << 3) | rm
    if mod == 0 and rm == 6:
        return bytes([modrm]) + le(ea, 2), ea
    if mod == 0:
        disp, db = 0, b""
    elif mod == 1:
        disp = rdisp(rng, 1)
        db = le(disp, 1)
    else:
        disp = rng.getrandbits(16)
        db = le(disp, 2)
    regs = A16REGS[rm]
    if len(regs) == 2:
        xv = rng.getrandbits(16) if rng.random() < 0.5 else rng.randrange(0, 64)
        c.setr(regs[1], 2, xv)
        c.setr(regs[0], 2, (ea - disp - xv) & 0xFFFF)
    else:
        c.setr(regs[0], 2, (ea - disp) & 0xFFFF)
    return bytes([modrm]) + db, ea


def memop(c, size, regf, reserved=(), spec=None, a16=False, wlen=32, waddr=None, ea=None):
    """Adds a data window and a memory operand in it. Returns (modrm bytes, ea)."""
    rng = c.rng
    if waddr is None:
        waddr = DATA16 if a16 else DATA
    c.win(waddr, wlen)
    if ea is None:
        ea = waddr + rng.randrange(0, wlen - size)
    if a16:
        return addr16(c, spec or spec16(rng, reserved), regf, ea)
    return addr32(c, spec or spec32(rng, reserved), regf, ea)


def rmform(c, op, size, mem, regf=None, regval=None, regsize=None, rmval=None, rmsize=None,
           imm=b"", reserved=(), spec=None, a16=False, lock=False, o16=None, seg=None, wlen=32):
    """Assembles [lock][seg][66][67] op ModRM... imm. `regf` None: a random
    register operand (value regval); otherwise a /digit. Returns (rm, regf):
    rm is the register number (reg form) or the effective address (mem)."""
    rng = c.rng
    regsize = regsize or size
    rmsize = rmsize or size
    if regf is None:
        regf = pick_reg(rng, reserved, regsize)
        if regval is not None:
            c.setr(regf, regsize, regval)
    if mem:
        mb, rm = memop(c, rmsize, regf, reserved, spec, a16, wlen)
        if rmval is not None:
            c.put(rm, rmsize, rmval)
    else:
        rm = pick_reg(rng, reserved, rmsize)
        if rmval is not None:
            c.setr(rm, rmsize, rmval)
        mb = bytes([0xC0 | (regf << 3) | rm])
    pre = b""
    if lock:
        pre += b"\xf0"
    if seg is not None:
        pre += bytes([seg])
    if o16 if o16 is not None else size == 2:
        pre += b"\x66"
    if a16:
        pre += b"\x67"
    c.code = pre + op + mb + imm
    return rm, regf


# ---------------------------------------------------------------- forms

FORMS = []   # (group, name, n, make)
_NAMES = set()


def form(group, name, n, make):
    if name in _NAMES:
        raise ValueError("duplicate form " + name)
    _NAMES.add(name)
    FORMS.append((group, name, n, make))


SZ = {1: "8", 2: "16", 4: "32"}
N = 24  # default cases per form

# ---- ALU: ADD OR ADC SBB AND SUB XOR CMP

ALU = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"]


def alu_forms():
    for o, mn in enumerate(ALU):
        grp = "logic" if mn in ("and", "or", "xor") else "alu"
        fm = LOGIC if grp == "logic" else ALL
        b = o * 8

        def mk(op, size, mem, imm=None, lock=False, fm=fm, o=o):
            def make(c, i):
                r = c.rng
                immb = b""
                if imm is not None:
                    immb = le(opv(r, imm), imm)
                rmform(c, op, size, mem, regf=(o if imm is not None else None),
                       regval=None if imm is not None else opv(r, size), rmval=opv(r, size), imm=immb, lock=lock)
                c.mask = fm
            return make

        for size in (1, 2, 4):
            s = SZ[size]
            opc = b + (0 if size == 1 else 1)
            for mem in (False, True):
                tag = "mem" if mem else "reg"
                form(grp, f"{mn} r/m{s},r{s} ({tag})", N, mk(bytes([opc]), size, mem))
                form(grp, f"{mn} r{s},r/m{s} ({tag})", N, mk(bytes([opc + 2]), size, mem))
        for size, reg in ((1, "al"), (2, "ax"), (4, "eax")):
            def make(c, i, size=size, opc=b + (4 if size == 1 else 5), fm=fm):
                c.setr(EAX, size, opv(c.rng, size))
                c.code = (b"\x66" if size == 2 else b"") + bytes([opc]) + le(opv(c.rng, size), size)
                c.mask = fm
            form(grp, f"{mn} {reg},imm{SZ[size]}", N, make)
        for mem in (False, True):
            tag = "mem" if mem else "reg"
            form(grp, f"{mn} r/m8,imm8 ({tag})", N, mk(b"\x80", 1, mem, imm=1))
            form(grp, f"{mn} r/m8,imm8 (82, {tag})", 12, mk(b"\x82", 1, mem, imm=1))
            form(grp, f"{mn} r/m16,imm16 ({tag})", N, mk(b"\x81", 2, mem, imm=2))
            form(grp, f"{mn} r/m32,imm32 ({tag})", N, mk(b"\x81", 4, mem, imm=4))
            form(grp, f"{mn} r/m16,imm8 ({tag})", N, mk(b"\x83", 2, mem, imm=1))
            form(grp, f"{mn} r/m32,imm8 ({tag})", N, mk(b"\x83", 4, mem, imm=1))
        if mn != "cmp":
            form(grp, f"lock {mn} r/m32,r32 (mem)", 12, mk(bytes([b + 1]), 4, True, lock=True))
            form(grp, f"lock {mn} r/m8,imm8 (mem)", 12, mk(b"\x80", 1, True, imm=1, lock=True))
            form(grp, f"lock {mn} r/m16,imm8 (mem)", 12, mk(b"\x83", 2, True, imm=1, lock=True))


def unary_forms():
    # TEST
    for size in (1, 2, 4):
        s = SZ[size]
        for mem in (False, True):
            tag = "mem" if mem else "reg"

            def make(c, i, size=size, mem=mem):
                rmform(c, bytes([0x84 if size == 1 else 0x85]), size, mem, regval=opv(c.rng, size), rmval=opv(c.rng, size))
                c.mask = LOGIC
            form("logic", f"test r/m{s},r{s} ({tag})", N, make)

            def make(c, i, size=size, mem=mem):
                rmform(c, bytes([0xF6 if size == 1 else 0xF7]), size, mem, regf=0, rmval=opv(c.rng, size),
                       imm=le(opv(c.rng, size), size))
                c.mask = LOGIC
            form("logic", f"test r/m{s},imm{s} ({tag})", N, make)
    for size, reg in ((1, "al"), (2, "ax"), (4, "eax")):
        def make(c, i, size=size):
            c.setr(EAX, size, opv(c.rng, size))
            c.code = (b"\x66" if size == 2 else b"") + bytes([0xA8 if size == 1 else 0xA9]) + le(opv(c.rng, size), size)
            c.mask = LOGIC
        form("logic", f"test {reg},imm{SZ[size]}", N, make)
    # NOT / NEG
    for sub, mn in ((2, "not"), (3, "neg")):
        for size in (1, 2, 4):
            for mem in (False, True):
                def make(c, i, size=size, mem=mem, sub=sub):
                    rmform(c, bytes([0xF6 if size == 1 else 0xF7]), size, mem, regf=sub, rmval=opv(c.rng, size))
                form("logic", f"{mn} r/m{SZ[size]} ({'mem' if mem else 'reg'})", N, make)

        def make(c, i, sub=sub):
            rmform(c, b"\xf7", 4, True, regf=sub, rmval=opv(c.rng, 4), lock=True)
            if sub == 3:  # Unicorn 2.0.1 gets LOCK NEG's OF SF ZF AF PF wrong: compare CF only
                c.mask = CF | DF
        form("logic", f"lock {mn} r/m32 (mem)", 12, make)
    # INC / DEC
    for sub, mn in ((0, "inc"), (1, "dec")):
        for size in (2, 4):
            def make(c, i, size=size, sub=sub):
                r = i % 8
                c.setr(r, size, opv(c.rng, size))
                c.code = (b"\x66" if size == 2 else b"") + bytes([0x40 + 8 * sub + r])
            form("logic", f"{mn} r{SZ[size]} ({'66 ' if size == 2 else ''}{4 + sub:x}x short)", N, make)
        for size in (1, 2, 4):
            for mem in (False, True):
                def make(c, i, size=size, mem=mem, sub=sub):
                    rmform(c, bytes([0xFE if size == 1 else 0xFF]), size, mem, regf=sub, rmval=opv(c.rng, size))
                form("logic", f"{mn} r/m{SZ[size]} ({'mem' if mem else 'reg'})", N, make)

        def make(c, i, sub=sub):
            rmform(c, b"\xff", 4, True, regf=sub, rmval=opv(c.rng, 4), lock=True)
        form("logic", f"lock {mn} r/m32 (mem)", 12, make)


# ---- shifts and rotates

SHIFTS = {0: "rol", 1: "ror", 2: "rcl", 3: "rcr", 4: "shl", 5: "shr", 6: "sal", 7: "sar"}


def shift_mask(sub, size, count):
    c = count & 31
    if c == 0:
        return ALL
    if sub < 4:  # rotates: SF ZF AF PF unaffected
        m = CF | PF | AF | ZF | SF | DF
    else:
        m = CF | PF | ZF | SF | DF
        if sub in (4, 5, 6) and c >= 8 * size:
            m &= ~CF
    if c == 1:
        m |= OF
    return m


def counts(rng, size, i):
    bits = 8 * size
    fixed = [0, 1, 2, 3, bits - 1, bits, bits + 1, 7, 8, 9, 15, 16, 17, 18, 31, 32, 33, 0x21, 0x41, 0x80, 0xFF, 0xE1, 0x3F]
    if i < len(fixed):
        return fixed[i]
    return rng.getrandbits(8) if rng.random() < 0.5 else rng.randrange(0, 34)


def shift_forms():
    for sub in range(8):
        mn = SHIFTS[sub]
        grp = "rotate" if sub < 4 else "shift"
        for size in (1, 2, 4):
            s = SZ[size]
            for how in ("1", "cl", "imm8"):
                if sub == 6 and how == "imm8":
                    continue
                for mem in (False, True):
                    if sub == 6 and mem:
                        continue
                    n = 12 if how == "1" else (34 if sub != 6 else 16)

                    def make(c, i, size=size, how=how, mem=mem, sub=sub):
                        r = c.rng
                        if how == "1":
                            op, cnt, imm = (0xD0 if size == 1 else 0xD1), 1, b""
                        elif how == "cl":
                            op, cnt, imm = (0xD2 if size == 1 else 0xD3), counts(r, size, i), b""
                            c.setr(ECX, 1, cnt)
                        else:
                            op, cnt = (0xC0 if size == 1 else 0xC1), counts(r, size, i)
                            imm = bytes([cnt])
                        rmform(c, bytes([op]), size, mem, regf=sub, rmval=opv(r, size), imm=imm, reserved=(ECX,))
                        c.mask = shift_mask(sub, size, cnt)
                    nm = f"{mn} r/m{s},{how} ({'mem' if mem else 'reg'})"
                    if sub == 6:
                        nm = f"sal r/m{s},{how} (/6, reg)"
                    form(grp, nm, n, make)
    # SHLD / SHRD
    for mn, base in (("shld", 0xA4), ("shrd", 0xAC)):
        for size in (2, 4):
            for how in ("imm8", "cl"):
                for mem in (False, True):
                    def make(c, i, size=size, how=how, mem=mem, base=base):
                        r = c.rng
                        cnt = counts(r, size, i)
                        if how == "cl":
                            c.setr(ECX, 1, cnt)
                            op, imm = bytes([0x0F, base + 1]), b""
                        else:
                            op, imm = bytes([0x0F, base]), bytes([cnt])
                        rm, regf = rmform(c, op, size, mem, regval=opv(r, size), rmval=opv(r, size), imm=imm, reserved=(ECX,))
                        c5 = cnt & 31
                        if c5 == 0:
                            c.mask = ALL
                        elif size == 2 and c5 > 16:
                            c.mask = DF
                            if mem:
                                c.undef_mem = [rm, rm + 1]
                            else:
                                c.undef_regs = [rm]
                        else:
                            c.mask = CF | PF | ZF | SF | DF | (OF if c5 == 1 else 0)
                    form("shift", f"{mn} r/m{SZ[size]},r{SZ[size]},{how} ({'mem' if mem else 'reg'})", 34, make)


# ---- multiply / divide

def div_operands(rng, size, signed):
    """(dividend, divisor) with a mix of valid, overflowing and zero divisors."""
    bits = 8 * size
    p = rng.random()
    if p < 0.12:
        return rng.getrandbits(2 * bits), 0
    if p < 0.25:  # anything (mostly overflow)
        return rng.getrandbits(2 * bits), opv(rng, size) or 1
    if not signed:
        d = opv(rng, size) or 1
        if p < 0.35:  # quotient just too big / just fits
            q = (1 << bits) - rng.randrange(0, 2) if rng.random() < 0.5 else (1 << bits)
        else:
            q = opv(rng, size)
        rem = rng.randrange(0, d)
        n = q * d + rem
        if n >= 1 << (2 * bits):
            n = rng.getrandbits(2 * bits)
        return n, d
    d = sx(opv(rng, size), size) or -1
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if p < 0.35:
        q = rng.choice([lo, hi, lo - 1, hi + 1])
    else:
        q = sx(opv(rng, size), size)
    rem = rng.randrange(0, abs(d))
    if q * d < 0 or (q * d == 0 and rng.random() < 0.5):
        rem = -rem
    n = q * d + rem
    if not -(1 << (2 * bits - 1)) <= n < (1 << (2 * bits - 1)):
        n = sx(rng.getrandbits(2 * bits), 2 * size)
    if p < 0.3:  # quotient -2^(bits-1)*-1 overflows
        n, d = (-(1 << (2 * bits - 1)) if rng.random() < 0.5 else -(1 << (bits - 1))), -1
    return n & ((1 << (2 * bits)) - 1), d & MASK[size]


def muldiv_forms():
    for sub, mn in ((4, "mul"), (5, "imul"), (6, "div"), (7, "idiv")):
        for size in (1, 2, 4):
            for mem in (False, True):
                def make(c, i, size=size, mem=mem, sub=sub):
                    r = c.rng
                    if sub >= 6:
                        n, d = div_operands(r, size, sub == 7)
                        if size == 1:
                            c.setr(EAX, 2, n)
                        else:
                            c.setr(EAX, size, n)
                            c.setr(EDX, size, n >> (8 * size))
                        rmval = d
                        c.mask = DIVM
                    else:
                        c.setr(EAX, size, opv(r, size))
                        rmval = opv(r, size)
                        c.mask = MULM
                    rmform(c, bytes([0xF6 if size == 1 else 0xF7]), size, mem, regf=sub, rmval=rmval,
                           reserved=(EAX, EDX) if mem else ())
                form("muldiv", f"{mn} r/m{SZ[size]} ({'mem' if mem else 'reg'})", 32 if sub >= 6 else N, make)
    for size in (2, 4):
        s = SZ[size]
        for mem in (False, True):
            tag = "mem" if mem else "reg"

            def make(c, i, size=size, mem=mem):
                rmform(c, b"\x0f\xaf", size, mem, regval=opv(c.rng, size), rmval=opv(c.rng, size))
                c.mask = MULM
            form("muldiv", f"imul r{s},r/m{s} ({tag})", N, make)
            for isz, opc in ((size, 0x69), (1, 0x6B)):
                def make(c, i, size=size, mem=mem, isz=isz, opc=opc):
                    rmform(c, bytes([opc]), size, mem, regval=opv(c.rng, size), rmval=opv(c.rng, size),
                           imm=le(opv(c.rng, isz), isz))
                    c.mask = MULM
                form("muldiv", f"imul r{s},r/m{s},imm{SZ[isz]} ({tag})", N, make)


# ---- BCD, SALC

def bcd_al(rng):
    p = rng.random()
    if p < 0.4:
        return rng.choice([0, 0x09, 0x0A, 0x0F, 0x10, 0x19, 0x1A, 0x79, 0x7F, 0x80, 0x99, 0x9A, 0x9F, 0xA0, 0xF9, 0xFA, 0xFF])
    return rng.getrandbits(8)


def bcd_forms():
    for mn, opc, m in (("daa", 0x27, ALL & ~OF), ("das", 0x2F, ALL & ~OF), ("aaa", 0x37, CF | AF | DF), ("aas", 0x3F, CF | AF | DF)):
        def make(c, i, opc=opc, m=m):
            c.setr(EAX, 1, bcd_al(c.rng))
            c.setr(4, 1, bcd_al(c.rng))   # AH
            c.code = bytes([opc])
            c.mask = m
        form("bcd", f"{mn} ({opc:02X})", 48, make)
    for mn, opc in (("aam", 0xD4), ("aad", 0xD5)):
        def make(c, i, opc=opc):
            c.setr(EAX, 1, bcd_al(c.rng))
            c.setr(4, 1, bcd_al(c.rng))
            c.code = bytes([opc, 0x0A])
            c.mask = SF | ZF | PF | DF
        form("bcd", f"{mn} ({opc:02X} 0A)", 40, make)

        def make(c, i, opc=opc):
            c.setr(EAX, 1, bcd_al(c.rng))
            c.setr(4, 1, bcd_al(c.rng))
            c.code = bytes([opc, c.rng.choice([1, 2, 7, 0x10, 0x80, 0xFF, c.rng.randrange(1, 256)])])
            c.mask = SF | ZF | PF | DF
        form("bcd", f"{mn} imm8 ({opc:02X} ib)", 40, make)

    def make(c, i):
        c.code = b"\xd4\x00"
    form("bcd", "aam 0 (D4 00, #DE)", 8, make)

    def make(c, i):
        c.code = b"\xd6"
    form("bcd", "salc (D6)", 12, make)
    # CBW / CWDE / CWD / CDQ
    for nm, code in (("cbw (66 98)", b"\x66\x98"), ("cwde (98)", b"\x98"), ("cwd (66 99)", b"\x66\x99"), ("cdq (99)", b"\x99")):
        def make(c, i, code=code):
            c.setr(EAX, 4, opv(c.rng, 4))
            c.code = code
        form("bcd", nm, 16, make)


# ---- bit operations

def bit_forms():
    for k, mn in enumerate(("bt", "bts", "btr", "btc")):
        m = BTM
        opr = 0xA3 + 8 * k
        for size in (2, 4):
            s = SZ[size]

            def make(c, i, size=size, opr=opr):
                r = c.rng
                off = opv(r, size) if r.random() < 0.5 else r.randrange(0, 64)
                rmform(c, bytes([0x0F, opr]), size, False, regval=off, rmval=opv(r, size))
                c.mask = m
            form("bits", f"{mn} r/m{s},r{s} (reg)", N, make)

            def make(c, i, size=size, opr=opr, lock=False):
                bitstring(c, size, bytes([0x0F, opr]), lock)
            form("bits", f"{mn} m{s},r{s} (mem, bit string)", N, make)
            for mem in (False, True):
                def make(c, i, size=size, mem=mem, k=k, lock=False):
                    r = c.rng
                    imm = r.choice([0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 0x7F, 0x80, 0xFF, r.getrandbits(8)])
                    rmform(c, b"\x0f\xba", size, mem, regf=4 + k, rmval=opv(r, size), imm=bytes([imm]), lock=lock)
                    c.mask = m
                form("bits", f"{mn} r/m{s},imm8 ({'mem' if mem else 'reg'})", N, make)
        if mn != "bt":
            def make(c, i, opr=opr):
                bitstring(c, 4, bytes([0x0F, opr]), True)
            form("bits", f"lock {mn} m32,r32 (mem, bit string)", 12, make)

            def make(c, i, k=k):
                r = c.rng
                rmform(c, b"\x0f\xba", 4, True, regf=4 + k, rmval=opv(r, 4), imm=bytes([r.getrandbits(8)]), lock=True)
                c.mask = m
            form("bits", f"lock {mn} r/m32,imm8 (mem)", 12, make)
    for mn, opr in (("bsf", 0xBC), ("bsr", 0xBD)):
        for size in (2, 4):
            for mem in (False, True):
                def make(c, i, size=size, mem=mem, opr=opr):
                    r = c.rng
                    p = r.random()
                    if p < 0.2:
                        v = 0
                    elif p < 0.45:
                        v = 1 << r.randrange(8 * size)
                    else:
                        v = opv(r, size)
                    rm, regf = rmform(c, bytes([0x0F, opr]), size, mem, regval=opv(r, size), rmval=v)
                    c.mask = BSM
                    if v == 0:
                        c.undef_regs = [regf]
                form("bits", f"{mn} r{SZ[size]},r/m{SZ[size]} ({'mem' if mem else 'reg'})", N + 8, make)

    def make(c, i):
        c.code = bytes([0x0F, 0xC8 + i % 8])
    form("bits", "bswap r32 (0F C8+r)", N, make)


def bitstring(c, size, op, lock):
    """BT* m,r with a register bit offset reaching before and after the operand."""
    r = c.rng
    bits = 8 * size
    regf = pick_reg(r, (), size)
    waddr = DATA
    wlen = 64
    ea = waddr + r.randrange(4, wlen - 4 - size)
    mb, ea = memop(c, size, regf, reserved=(regf,), wlen=wlen, waddr=waddr, ea=ea)
    lo = -((ea - waddr) // size)
    hi = (waddr + wlen - size - ea) // size
    k = r.randrange(lo, hi + 1)
    off = k * bits + r.randrange(bits)
    c.setr(regf, size, off)
    c.code = (b"\xf0" if lock else b"") + (b"\x66" if size == 2 else b"") + op + mb
    c.mask = BTM


# ---- exchange / compare-exchange

def xchg_forms():
    for size in (1, 2, 4):
        s = SZ[size]
        for mem in (False, True):
            tag = "mem" if mem else "reg"

            def make(c, i, size=size, mem=mem):
                rmform(c, bytes([0x86 if size == 1 else 0x87]), size, mem, regval=opv(c.rng, size), rmval=opv(c.rng, size))
            form("xchg", f"xchg r/m{s},r{s} ({tag})", N, make)

            def make(c, i, size=size, mem=mem):
                rmform(c, bytes([0x0F, 0xC0 if size == 1 else 0xC1]), size, mem, regval=opv(c.rng, size), rmval=opv(c.rng, size))
            form("xchg", f"xadd r/m{s},r{s} ({tag})", N, make)

            def make(c, i, size=size, mem=mem, lock=False):
                cmpxchg(c, size, mem, lock)
            form("xchg", f"cmpxchg r/m{s},r{s} ({tag})", N, make)
    for size in (2, 4):
        def make(c, i, size=size):
            rg = 1 + i % 7
            c.code = (b"\x66" if size == 2 else b"") + bytes([0x90 + rg])
        form("xchg", f"xchg {'ax,r16 (66 90+r)' if size == 2 else 'eax,r32 (90+r)'}", 14, make)

    def make(c, i):
        rmform(c, b"\x0f\xc1", 4, True, regval=opv(c.rng, 4), rmval=opv(c.rng, 4), lock=True)
    form("xchg", "lock xadd r/m32,r32 (mem)", 12, make)

    def make(c, i):
        rmform(c, b"\x87", 4, True, regval=opv(c.rng, 4), rmval=opv(c.rng, 4), lock=True)
    form("xchg", "lock xchg r/m32,r32 (mem)", 12, make)

    def make(c, i):
        cmpxchg(c, 4, True, True)
    form("xchg", "lock cmpxchg r/m32,r32 (mem)", 12, make)
    for lock in (False, True):
        def make(c, i, lock=lock):
            r = c.rng
            mb, ea = memop(c, 8, 1, reserved=(EAX, ECX, EDX, EBX))
            v = r.getrandbits(64) if r.random() < 0.7 else opv(r, 4) | (opv(r, 4) << 32)
            c.put(ea, 8, v)
            if r.random() < 0.5:
                c.regs[EAX], c.regs[EDX] = v & M32, v >> 32
            elif r.random() < 0.5:
                c.regs[EAX] = v & M32
            c.code = (b"\xf0" if lock else b"") + b"\x0f\xc7" + mb
        form("xchg", f"{'lock ' if lock else ''}cmpxchg8b m64 (0F C7 /1)", N if not lock else 12, make)


def cmpxchg(c, size, mem, lock):
    r = c.rng
    v = opv(r, size)
    rm, regf = rmform(c, bytes([0x0F, 0xB0 if size == 1 else 0xB1]), size, mem, regval=opv(r, size), rmval=v,
                      reserved=(EAX,), lock=lock)
    c.setr(EAX, size, v if r.random() < 0.5 else opv(r, size))


# ---- SETcc / CMOVcc

def cond_forms():
    for cc, cn in enumerate(CONDS):
        for mem in (False, True):
            def make(c, i, cc=cc, mem=mem):
                rmform(c, bytes([0x0F, 0x90 + cc]), 1, mem, regf=0)
            form("cond", f"set{cn} r/m8 ({'mem' if mem else 'reg'})", 16, make)
        for size in (2, 4):
            for mem in (False, True):
                def make(c, i, cc=cc, mem=mem, size=size):
                    rmform(c, bytes([0x0F, 0x40 + cc]), size, mem, regval=opv(c.rng, size), rmval=opv(c.rng, size))
                form("cond", f"cmov{cn} r{SZ[size]},r/m{SZ[size]} ({'mem' if mem else 'reg'})", 12, make)


# ---- control transfer

def target(rng):
    """A branch target inside guest memory (not executed)."""
    return rng.choice([0x1000, 0x100000, 0x100800, 0x3FF000, rng.randrange(0x1000, 0x3FF000)])


def rel8(rng):
    return rng.choice([0, 1, 0x7F, 0x80, 0xFF, 0xFE, rng.getrandbits(8), rng.getrandbits(8)])


def rel32(rng, ilen):
    p = rng.random()
    if p < 0.3:
        v = rng.choice([0, 1, -1, -ilen, 0x7F, -0x80, 0x1000])
    else:
        v = rng.randrange(-0x100000, 0x200000)
    return le(v, 4)


def flow_forms():
    for cc, cn in enumerate(CONDS):
        def make(c, i, cc=cc):
            c.code = bytes([0x70 + cc, rel8(c.rng)])
        form("branch", f"j{cn} rel8", 20, make)

        def make(c, i, cc=cc):
            c.code = bytes([0x0F, 0x80 + cc]) + rel32(c.rng, 6)
        form("branch", f"j{cn} rel32", 20, make)

    def make(c, i):
        c.code = bytes([0xEB, rel8(c.rng)])
    form("branch", "jmp rel8", 20, make)

    def make(c, i):
        c.code = b"\xe9" + rel32(c.rng, 5)
    form("branch", "jmp rel32", 20, make)
    for mem in (False, True):
        def make(c, i, mem=mem):
            rmform(c, b"\xff", 4, mem, regf=4, rmval=target(c.rng))
        form("branch", f"jmp r/m32 ({'mem' if mem else 'reg'})", 20, make)

    def make(c, i):
        stack(c, 4, 0)
        c.code = b"\xe8" + rel32(c.rng, 5)
    form("branch", "call rel32 (E8)", 20, make)
    for mem in (False, True):
        def make(c, i, mem=mem):
            stack(c, 4, 0)
            rmform(c, b"\xff", 4, mem, regf=2, rmval=target(c.rng), reserved=(ESP,))
        form("branch", f"call r/m32 (FF /2, {'mem' if mem else 'reg'})", 20, make)

    def make(c, i):
        stack(c, 0, 4)
        c.put(c.regs[ESP], 4, target(c.rng))
        c.code = b"\xc3"
    form("branch", "ret (C3)", 20, make)

    def make(c, i):
        stack(c, 0, 4)
        c.put(c.regs[ESP], 4, target(c.rng))
        # imm16 < 0x8000: Unicorn 2.0.1 sign-extends RET's imm16 (silicon zero-extends)
        c.code = b"\xc2" + le(c.rng.choice([0, 2, 4, 8, 0x7FFE, 0x7FFF, c.rng.getrandbits(15)]), 2)
    form("branch", "ret imm16 (C2)", 20, make)
    for nm, opc in (("loopne", 0xE0), ("loope", 0xE1), ("loop", 0xE2), ("jecxz", 0xE3)):
        for a16 in (False, True):
            def make(c, i, opc=opc, a16=a16):
                r = c.rng
                c.regs[ECX] = r.choice([0, 1, 2, 0x10000, 0x10001, M32, 0xFFFF, rval(r), r.randrange(0, 5)])
                c.code = (b"\x67" if a16 else b"") + bytes([opc, rel8(r)])
            name = f"{nm} rel8" if not a16 else (f"{nm} rel8 (67, cx)" if opc != 0xE3 else "jcxz rel8 (67 E3)")
            form("branch", name, 20, make)


# ---- stack

def stack(c, below, above, wlen=64):
    """A stack window with ESP placed so `below` bytes under it and `above`
    bytes from it fit in the window."""
    c.win(STK, wlen)
    c.regs[ESP] = STK + c.rng.randrange(below, wlen - above + 1)


def stack_forms():
    for size in (4, 2):
        o = b"\x66" if size == 2 else b""
        s = SZ[size]

        def make(c, i, size=size, o=o):
            stack(c, size, 0)
            c.code = o + bytes([0x50 + i % 8])
        form("stack", f"push r{s} ({'66 ' if size == 2 else ''}50+r)", N, make)

        def make(c, i, size=size, o=o):
            stack(c, 0, size)
            c.code = o + bytes([0x58 + i % 8])
        form("stack", f"pop r{s} ({'66 ' if size == 2 else ''}58+r)", N, make)

        def make(c, i, size=size, o=o):
            stack(c, size, 0)
            c.code = o + b"\x6a" + le(opv(c.rng, 1), 1)
        form("stack", f"push imm8 ({'66 ' if size == 2 else ''}6A)", 16, make)

        def make(c, i, size=size, o=o):
            stack(c, size, 0)
            c.code = o + b"\x68" + le(opv(c.rng, size), size)
        form("stack", f"push imm{s} ({'66 ' if size == 2 else ''}68)", 16, make)
        for mem in (False, True):
            tag = "mem" if mem else "reg"

            def make(c, i, size=size, mem=mem):
                stack(c, size, 0)
                rmform(c, b"\xff", size, mem, regf=6, rmval=opv(c.rng, size), reserved=(ESP,))
            form("stack", f"push r/m{s} ({'66 ' if size == 2 else ''}FF /6, {tag})", 16, make)

            def make(c, i, size=size, mem=mem):
                stack(c, 0, size)
                c.put(c.regs[ESP], size, opv(c.rng, size))
                rmform(c, b"\x8f", size, mem, regf=0, reserved=(ESP,))
            form("stack", f"pop r/m{s} ({'66 ' if size == 2 else ''}8F /0, {tag})", 16, make)

        def make(c, i, size=size, o=o):
            stack(c, 8 * size, 0)
            c.code = o + b"\x60"
        form("stack", f"pusha{'w (66 60)' if size == 2 else 'd (60)'}", 16, make)

        def make(c, i, size=size, o=o):
            stack(c, 0, 8 * size)
            c.code = o + b"\x61"
        form("stack", f"popa{'w (66 61)' if size == 2 else 'd (61)'}", 16, make)

        def make(c, i, size=size, o=o):
            stack(c, size, 0)
            c.code = o + b"\x9c"
        form("stack", f"pushf{'w (66 9C)' if size == 2 else 'd (9C)'}", 16, make)

        def make(c, i, size=size, o=o):
            r = c.rng
            stack(c, 0, size)
            v = rflags(r)
            if r.random() < 0.3:   # IOPL, NT, AC, ID: loaded at CPL 0 but not compared
                v |= r.choice([0x1000, 0x2000, 0x3000, 0x4000, 0x40000, 0x200000, 0x8, 0x20, 0x8000])
            if r.random() < 0.2:
                v &= ~2
            c.put(c.regs[ESP], size, v)
            c.code = o + b"\x9d"
        form("stack", f"popf{'w (66 9D)' if size == 2 else 'd (9D)'}", 24, make)

        def make(c, i, o=o, size=size):
            c.win(STK, 64)
            c.regs[EBP] = STK + c.rng.randrange(0, 64 - size + 1)
            c.code = o + b"\xc9"
        form("stack", f"leave ({'66 ' if size == 2 else ''}C9)", 16, make)

    # push/pop with an ESP-based memory operand: PUSH computes the address
    # before decrementing ESP, POP after incrementing it
    def make(c, i):
        r = c.rng
        c.win(STK, 64)
        esp = STK + r.randrange(4, 65)
        c.regs[ESP] = esp
        d = r.randint(max(-128, STK - esp), min(127, STK + 60 - esp))
        c.code = b"\xff\x74\x24" + le(d, 1)
    form("stack", "push r/m32 (FF /6, mem [esp+disp8])", 16, make)

    def make(c, i):
        r = c.rng
        c.win(STK, 64)
        esp = STK + r.randrange(0, 61)
        c.regs[ESP] = esp
        d = r.randint(max(-128, STK - esp - 4), min(127, STK + 56 - esp))
        c.code = b"\x8f\x44\x24" + le(d, 1)
    form("stack", "pop r/m32 (8F /0, mem [esp+disp8])", 16, make)

    for level in range(4):
        def make(c, i, level=level):
            r = c.rng
            c.win(STK, 64)
            c.regs[ESP] = STK + r.randrange(4 * (level + 1), 65)
            if level >= 2 or r.random() < 0.5:   # levels 2, 3 copy frame pointers from [EBP-4]...
                c.regs[EBP] = STK + r.randrange(4 * max(level - 1, 0), 61)
            c.code = b"\xc8" + le(r.choice([0, 4, 8, 0x10, 0x100, 0xFFFF, r.getrandbits(16)]), 2) + bytes([level])
        form("stack", f"enter imm16,{level} (C8)", 20, make)


# ---- strings

STROPS = {"movs": 0xA4, "cmps": 0xA6, "stos": 0xAA, "lods": 0xAC, "scas": 0xAE}
SFX = {1: "b", 2: "w", 4: "d"}


def string_case(c, op, size, rep, a16=False, seg=None):
    """MOVS/CMPS/STOS/LODS/SCAS: source window at DATA, destination at DATA2
    (DATA16/DATA16B with 0x67), ECX <= 16 for REP, DF from the random flags."""
    r = c.rng
    cnt = r.choice([0, 1, 2, 3, 4, 7, 8, 15, 16, r.randrange(0, 17)]) if rep else 1
    down = bool(c.flags & DF)
    wlen = 64
    src = DATA16 if a16 else DATA
    dst = DATA16B if a16 else DATA2
    span = max(cnt, 1) * size

    def start(wa):
        return wa + r.randrange(0, wlen - span + 1) + (span - size if down else 0)

    def seti(reg, v):
        c.setr(reg, 2 if a16 else 4, v)

    if op in ("movs", "cmps", "lods"):
        c.win(src, wlen)
        seti(ESI, start(src))
    if op in ("movs", "cmps", "stos", "scas"):
        if op == "cmps" and r.random() < 0.7:   # mostly equal data, so REPE runs on
            data = bytearray(c.windows[0].data)
            for _ in range(r.choice([0, 1, 1, 2, 4])):
                data[r.randrange(wlen)] = r.getrandbits(8)
            c.win(dst, wlen, data)
            seti(EDI, c.getr(ESI, 2 if a16 else 4) - src + dst)
        elif op == "scas":
            val = opv(r, size)
            data = bytearray()
            for _ in range(wlen // size):
                data += le(val if r.random() < 0.8 else opv(r, size), size)
            c.win(dst, wlen, data)
            c.setr(EAX, size, val if r.random() < 0.6 else opv(r, size))
            seti(EDI, start(dst))
        else:
            c.win(dst, wlen)
            seti(EDI, start(dst))
    if rep:
        seti(ECX, cnt)
    pre = b""
    if seg is not None:
        pre += bytes([seg])
    if rep:
        pre += bytes([0xF2 if rep == "repne" else 0xF3])
    if size == 2:
        pre += b"\x66"
    if a16:
        pre += b"\x67"
    c.code = pre + bytes([STROPS[op] + (0 if size == 1 else 1)])
    c.rep = bool(rep)


def string_forms():
    for op in ("movs", "cmps", "stos", "lods", "scas"):
        reps = [None, "repe", "repne"] if op in ("cmps", "scas") else [None, "rep"]
        for size in (1, 2, 4):
            for rep in reps:
                nm = f"{op}{SFX[size]}"
                if rep:
                    nm = f"{rep} {nm}"

                def make(c, i, op=op, size=size, rep=rep):
                    string_case(c, op, size, rep)
                form("string", nm, 32 if rep else 16, make)
    for nm, op, size, rep in (("movsb", "movs", 1, None), ("rep movsd", "movs", 4, "rep"), ("rep stosw", "stos", 2, "rep"),
                              ("repe cmpsb", "cmps", 1, "repe"), ("repne scasd", "scas", 4, "repne"), ("lodsw", "lods", 2, None)):
        def make(c, i, op=op, size=size, rep=rep):
            string_case(c, op, size, rep, a16=True)
        form("string", f"{nm} (67, a16)", 16, make)


# ---- MOV and friends

def mov_forms():
    for size in (1, 2, 4):
        s = SZ[size]
        for mem in (False, True):
            tag = "mem" if mem else "reg"

            def make(c, i, size=size, mem=mem):
                rmform(c, bytes([0x88 if size == 1 else 0x89]), size, mem, regval=opv(c.rng, size), rmval=opv(c.rng, size))
            form("mov", f"mov r/m{s},r{s} ({tag})", N, make)

            def make(c, i, size=size, mem=mem):
                rmform(c, bytes([0x8A if size == 1 else 0x8B]), size, mem, regval=opv(c.rng, size), rmval=opv(c.rng, size))
            form("mov", f"mov r{s},r/m{s} ({tag})", N, make)

            def make(c, i, size=size, mem=mem):
                rmform(c, bytes([0xC6 if size == 1 else 0xC7]), size, mem, regf=0, rmval=opv(c.rng, size),
                       imm=le(opv(c.rng, size), size))
            form("mov", f"mov r/m{s},imm{s} ({tag})", N, make)

        def make(c, i, size=size):
            c.code = (b"\x66" if size == 2 else b"") + bytes([(0xB0 if size == 1 else 0xB8) + i % 8]) + le(opv(c.rng, size), size)
        form("mov", f"mov r{s},imm{s} ({'B0' if size == 1 else 'B8'}+r{', 66' if size == 2 else ''})", N, make)
        acc = {1: "al", 2: "ax", 4: "eax"}[size]
        for load in (True, False):
            def make(c, i, size=size, load=load, a16=False, seg=None):
                moffs(c, size, load, a16, seg)
            opc = (0xA0 if load else 0xA2) + (0 if size == 1 else 1)
            nm = f"mov {acc},moffs{s}" if load else f"mov moffs{s},{acc}"
            form("mov", f"{nm} ({'66 ' if size == 2 else ''}{opc:02X})", 16, make)

    def make(c, i):
        moffs(c, 1, True, True, None)
    form("mov", "mov al,moffs8 (67 A0, a16)", 12, make)

    def make(c, i):
        moffs(c, 4, False, True, None)
    form("mov", "mov moffs32,eax (67 A3, a16)", 12, make)
    # MOVZX / MOVSX
    for mn, b in (("movzx", 0xB6), ("movsx", 0xBE)):
        for dsz, ssz in ((4, 1), (4, 2), (2, 1)):
            for mem in (False, True):
                def make(c, i, dsz=dsz, ssz=ssz, mem=mem, b=b):
                    rmform(c, bytes([0x0F, b + (ssz == 2)]), dsz, mem, regval=opv(c.rng, dsz), rmval=opv(c.rng, ssz),
                           rmsize=ssz, o16=(dsz == 2))
                form("mov", f"{mn} r{SZ[dsz]},r/m{SZ[ssz]} ({'66, ' if dsz == 2 else ''}{'mem' if mem else 'reg'})", N, make)
    # XLAT: AL indexes a table at EBX (BX with 0x67)
    for a16 in (False, True):
        def make(c, i, a16=a16):
            r = c.rng
            wa = DATA16 if a16 else DATA
            c.win(wa, 64)
            al = r.randrange(0, 64) if r.random() < 0.7 else r.getrandbits(8)
            c.setr(EAX, 1, al)
            c.setr(EBX, 2 if a16 else 4, wa + r.randrange(0, 64) - al)
            c.code = (b"\x67" if a16 else b"") + b"\xd7"
        form("mov", "xlat (67 D7, a16)" if a16 else "xlat (D7)", 20, make)
    # flag instructions and NOPs
    for nm, code in (("clc", b"\xf8"), ("stc", b"\xf9"), ("cmc", b"\xf5"), ("cld", b"\xfc"), ("std", b"\xfd"),
                     ("lahf", b"\x9f"), ("sahf", b"\x9e"), ("nop", b"\x90"), ("nop (66 90)", b"\x66\x90")):
        def make(c, i, code=code):
            c.code = code
        form("mov", nm, 16, make)
    for size in (4, 2):
        for mem in (False, True):
            def make(c, i, size=size, mem=mem):
                r = c.rng
                regf = 0
                if mem:
                    spec = spec32(r)
                    mb, ea = addr32(c, spec, regf, r.getrandbits(32))
                else:
                    mb = bytes([0xC0 | r.randrange(8)])
                c.code = (b"\x66" if size == 2 else b"") + b"\x0f\x1f" + mb
            form("mov", f"nop r/m{SZ[size]} ({'66 ' if size == 2 else ''}0F 1F /0, {'mem' if mem else 'reg'})", 16, make)


def moffs(c, size, load, a16, seg):
    r = c.rng
    wa = DATA16 if a16 else DATA
    c.win(wa, 16)
    ea = wa + r.randrange(0, 16 - size + 1)
    if load:
        c.put(ea, size, opv(r, size))
    else:
        c.setr(EAX, size, opv(r, size))
    opc = (0xA0 if load else 0xA2) + (0 if size == 1 else 1)
    pre = b""
    if seg is not None:
        pre += bytes([seg])
    if size == 2:
        pre += b"\x66"
    if a16:
        pre += b"\x67"
    c.code = pre + bytes([opc]) + le(ea, 2 if a16 else 4)


# ---- addressing forms

def name32(spec):
    mod, rm, sib = spec
    d = {0: "", 1: "+d8", 2: "+d32"}[mod]
    if sib is None:
        if mod == 0 and rm == 5:
            return "[disp32]"
        return f"[{REGS[rm]}{d}]"
    scale, index, base = sib
    if mod == 0 and base == 5:
        return "[disp32] (sib, no base, no index)" if index == 4 else f"[index*{1 << scale}+disp32] (sib, no base)"
    if index == 4:
        return f"[{REGS[base]}{d}] (sib, no index)"
    return f"[base+index*{1 << scale}{d}] (sib)"


def addressing_forms():
    specs = []
    for mod in range(3):
        for rm in range(8):
            if rm == 4 or (mod == 0 and rm == 5):
                continue
            specs.append(("fixed", (mod, rm, None)))
    specs.append(("fixed", (0, 5, None)))
    for mod in range(3):
        for scale in range(4):
            specs.append(("sib", (mod, scale)))
    for mod in range(3):
        specs.append(("noidx-esp", mod))
    specs.append(("noidx-other", None))
    specs.append(("nobase", None))
    specs.append(("d32sib", None))
    specs.append(("ebp-base", 1))
    specs.append(("ebp-base", 2))
    specs.append(("esp-base-idx", 1))

    def mkspec(rng, kind, arg, reserved):
        if kind == "fixed":
            return arg
        if kind == "sib":
            mod, scale = arg
            bases = [b for b in range(8) if b not in reserved and not (mod == 0 and b == 5)]
            idx = [x for x in range(8) if x not in reserved and x != 4]
            return (mod, 4, (scale, rng.choice(idx), rng.choice(bases)))
        if kind == "noidx-esp":
            return (arg, 4, (rng.randrange(4), 4, ESP))
        if kind == "noidx-other":
            mod = rng.randrange(3)
            bases = [b for b in range(8) if b not in reserved and b != ESP and not (mod == 0 and b == 5)]
            return (mod, 4, (rng.randrange(4), 4, rng.choice(bases)))
        if kind == "nobase":
            idx = [x for x in range(8) if x not in reserved and x != 4]
            return (0, 4, (rng.randrange(4), rng.choice(idx), 5))
        if kind == "d32sib":
            return (0, 4, (rng.randrange(4), 4, 5))
        if kind == "ebp-base":
            idx = [x for x in range(8) if x not in reserved and x != 4]
            return (arg, 4, (rng.randrange(4), rng.choice(idx), EBP))
        if kind == "esp-base-idx":
            idx = [x for x in range(8) if x not in reserved and x != 4]
            return (arg, 4, (rng.randrange(4), rng.choice(idx), ESP))
        raise ValueError(kind)

    def sname(kind, arg):
        if kind == "fixed":
            return name32(arg)
        if kind == "sib":
            mod, scale = arg
            return f"[base+index*{1 << scale}{['', '+d8', '+d32'][mod]}] (sib)"
        if kind == "noidx-esp":
            return f"[esp{['', '+d8', '+d32'][arg]}] (sib)"
        if kind == "noidx-other":
            return "[base+d] (sib, no index)"
        if kind == "nobase":
            return "[index*s+disp32] (sib, no base)"
        if kind == "d32sib":
            return "[disp32] (sib, no base, no index)"
        if kind == "ebp-base":
            return f"[ebp+index*s{['', '+d8', '+d32'][arg]}] (sib)"
        if kind == "esp-base-idx":
            return "[esp+index*s+d8] (sib)"

    insns = [
        ("add r32,r/m32", b"\x03", 4, "load"),
        ("mov r/m32,r32", b"\x89", 4, "store"),
        ("mov r8,r/m8", b"\x8a", 1, "load"),
        ("lea r32,m", b"\x8d", 4, "lea"),
        ("lea r16,m", b"\x8d", 2, "lea"),
    ]
    for iname, op, size, kind_i in insns:
        for kind, arg in specs:
            def make(c, i, op=op, size=size, kind=kind, arg=arg, kind_i=kind_i):
                r = c.rng
                spec = mkspec(r, kind, arg, ())
                regf = pick_reg(r, (), size)
                if kind_i != "lea":
                    c.setr(regf, size, opv(r, size))
                c.win(DATA, 32)
                ea = DATA + r.randrange(0, 32 - size)
                mb, ea = addr32(c, spec, regf, ea)
                if kind_i != "lea":
                    c.put(ea, size, opv(r, size))
                else:
                    c.windows = []  # LEA touches no memory
                c.code = (b"\x66" if size == 2 else b"") + op + mb
            form("addressing", f"{iname} (mem: {sname(kind, arg)})", 10, make)
        # 16-bit addressing: every rm with mod 0/1/2
        for mod in range(3):
            for rm in range(8):
                def make(c, i, op=op, size=size, mod=mod, rm=rm, kind_i=kind_i):
                    r = c.rng
                    regf = pick_reg(r, (), size)
                    if kind_i != "lea":
                        c.setr(regf, size, opv(r, size))
                    c.win(DATA16, 32)
                    ea = DATA16 + r.randrange(0, 32 - size)
                    mb, ea = addr16(c, (mod, rm), regf, ea)
                    if kind_i != "lea":
                        c.put(ea, size, opv(r, size))
                    else:
                        c.windows = []
                    c.code = (b"\x66" if size == 2 else b"") + b"\x67" + op + mb
                an = "[disp16]" if (mod == 0 and rm == 6) else f"[{A16NAMES[rm]}{['', '+d8', '+d16'][mod]}]"
                form("addressing", f"{iname} (67, mem: {an})", 8, make)
    # segment-override prefixes (flat segments: same result as without)
    for seg, sn in ((0x26, "es"), (0x2E, "cs"), (0x36, "ss"), (0x3E, "ds"), (0x64, "fs"), (0x65, "gs")):
        def make(c, i, seg=seg):
            rmform(c, b"\x03", 4, True, regval=opv(c.rng, 4), rmval=opv(c.rng, 4), seg=seg)
        form("addressing", f"add r32,r/m32 ({sn}: override, mem)", 12, make)

        def make(c, i, seg=seg):
            rmform(c, b"\x88", 1, True, regval=opv(c.rng, 1), rmval=opv(c.rng, 1), seg=seg)
        form("addressing", f"mov r/m8,r8 ({sn}: override, mem)", 12, make)

        def make(c, i, seg=seg):
            moffs(c, 4, True, False, seg)
        form("addressing", f"mov eax,moffs32 ({sn}: override, A1)", 8, make)

        def make(c, i, seg=seg):
            string_case(c, "lods", 4, None, seg=seg)
        form("addressing", f"lodsd ({sn}: override)", 8, make)

        def make(c, i, seg=seg):
            string_case(c, "movs", 1, "rep", seg=seg)
        form("addressing", f"rep movsb ({sn}: override)", 8, make)

        def make(c, i, seg=seg):
            rmform(c, b"\x03", 4, True, regval=opv(c.rng, 4), rmval=opv(c.rng, 4), seg=seg, a16=True)
        form("addressing", f"add r32,r/m32 ({sn}: override, 67, mem)", 8, make)

        def make(c, i, seg=seg):
            rmform(c, b"\x8d", 4, True, seg=seg)
            c.windows = []
        form("addressing", f"lea r32,m ({sn}: override)", 6, make)


def build_forms():
    if FORMS:
        return FORMS
    alu_forms()
    unary_forms()
    shift_forms()
    muldiv_forms()
    bcd_forms()
    bit_forms()
    xchg_forms()
    cond_forms()
    flow_forms()
    stack_forms()
    string_forms()
    mov_forms()
    addressing_forms()
    return FORMS


# ---------------------------------------------------------------- the oracle

def uc_regs():
    global UC_REGS
    if UC_REGS is None:
        UC_REGS = [getattr(X, "UC_X86_REG_" + n.upper()) for n in REGS]
    return UC_REGS


class GenError(Exception):
    pass


def run_uc(c, watch=None):
    """One Unicorn run of the case's instruction. With `watch` (a list), data
    accesses are recorded into it through memory hooks; such a run is used
    for that check only, because Unicorn 2.0.1 computes some results wrongly
    while memory hooks are installed (e.g. CF of SHL/SHR m,CL; the frame
    pointers ENTER copies)."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, RAM)
    for w in c.windows:
        uc.mem_write(w.addr, bytes(w.data))
    uc.mem_write(CODE, c.code)
    ur = uc_regs()
    for k in range(8):
        uc.reg_write(ur[k], c.regs[k])
    uc.reg_write(X.UC_X86_REG_EFLAGS, c.flags)
    uc.reg_write(X.UC_X86_REG_EIP, CODE)
    intr = []

    def on_intr(uc_, intno, _ud):
        intr.append(intno)
        uc_.emu_stop()

    def on_mem(uc_, access, addr, size, value, _ud):
        watch.append((addr, size))

    uc.hook_add(UC_HOOK_INTR, on_intr)
    if watch is not None:
        uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, on_mem)
    eip = CODE
    for _ in range(1000):
        uc.emu_start(eip, 0, 0, 1)
        eip = uc.reg_read(X.UC_X86_REG_EIP)
        if intr or not c.rep or eip != CODE:
            break
    else:
        raise GenError("REP instruction did not finish")
    return uc, ur, intr, eip


def emulate(c, check_access=True):
    """Runs the case's instruction on Unicorn; returns (regs, flags, eip, windows, exception)."""
    uc, ur, intr, eip = run_uc(c)
    regs = [uc.reg_read(r) & M32 for r in ur]
    flags = uc.reg_read(X.UC_X86_REG_EFLAGS) & M32
    mem = [bytes(uc.mem_read(w.addr, len(w.data))) for w in c.windows]
    exc = None
    if intr:
        if intr[0] != 0:
            raise GenError("unexpected exception vector %d" % intr[0])
        exc = "DE"
        if regs != c.regs or any(m != bytes(w.data) for m, w in zip(mem, c.windows)):
            raise GenError("#DE changed state")
    if check_access:
        seen = []
        run_uc(c, seen)
        stray = [(a, n) for a, n in seen
                 if not any(w.addr <= a and a + n <= w.addr + len(w.data) for w in c.windows)]
        if stray:
            raise GenError("data access outside the windows: %s" % ", ".join("0x%x+%d" % s for s in stray[:4]))
    return regs, flags, eip, mem, exc


def state_json(regs, flags, eip, windows_hex):
    return {"regs": {n: regs[k] for k, n in enumerate(REGS)}, "flags": flags, "eip": eip,
            "mem": [{"addr": a, "hex": h} for a, h in windows_hex]}


def gen_form(args):
    """Generates the JSON lines of one form."""
    fidx, seed, oracle, check = args
    group, name, n, make = build_forms()[fidx]
    rng = random.Random("%d/%s" % (seed, name))
    lines = []
    for i in range(n):
        c = Case(rng)
        make(c, i)
        if not c.code or len(c.code) > 15:
            raise GenError("%s: bad instruction length" % name)
        try:
            regs, flags, eip, mem, exc = emulate(c, check)
        except (UcError, GenError) as e:
            raise GenError("%s case %d (%s): %s" % (name, i, c.code.hex(), e))
        init_mem = [(w.addr, bytes(w.data).hex()) for w in c.windows]
        init = state_json(c.regs, c.flags, CODE, init_mem)
        if exc is not None:
            final = dict(state_json(c.regs, c.flags, CODE, init_mem), exception=exc)
            mask = ALL
        else:
            final = dict(state_json(regs, flags, eip, [(w.addr, m.hex()) for w, m in zip(c.windows, mem)]), exception=None)
            mask = c.mask
        case = {"name": name, "i": i, "bytes": c.code.hex(), "init": init, "final": final, "flags_mask": mask}
        if exc is None and (c.undef_regs or c.undef_mem):
            case["undef"] = {"regs": [REGS[k] for k in c.undef_regs], "mem": list(c.undef_mem)}
        case["oracle"] = oracle
        case["seed"] = seed
        lines.append(json.dumps(case, separators=(",", ":")))
    return group, name, lines


def verify(paths):
    """Runs existing case files (e.g. the silicon sample) on the oracle and
    prints every case whose compared state differs: a check of the oracle."""
    total = bad = 0
    for path in paths:
        n = nbad = 0
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                t = json.loads(line)
                n += 1
                c = Case(random.Random(0))
                c.regs = [t["init"]["regs"][r] for r in REGS]
                c.flags = t["init"]["flags"]
                c.windows = [Window(w["addr"], bytes.fromhex(w["hex"])) for w in t["init"].get("mem", [])]
                c.code = bytes.fromhex(t["bytes"])
                c.rep = t["name"].startswith("rep")
                fin, mask = t["final"], t["flags_mask"]
                undef = t.get("undef", {})
                diffs = []
                try:
                    regs, flags, eip, mem, exc = emulate(c, False)
                except (UcError, GenError) as e:
                    diffs.append(str(e))
                else:
                    if exc != fin.get("exception"):
                        diffs.append("exception %s, oracle %s" % (fin.get("exception"), exc))
                    elif exc is None:
                        for k, r in enumerate(REGS):
                            if r not in undef.get("regs", []) and regs[k] != fin["regs"][r]:
                                diffs.append("%s 0x%x, oracle 0x%x" % (r, fin["regs"][r], regs[k]))
                        if (flags ^ fin["flags"]) & mask:
                            diffs.append("flags 0x%x, oracle 0x%x (mask 0x%x)" % (fin["flags"], flags, mask))
                        if eip != fin["eip"]:
                            diffs.append("eip 0x%x, oracle 0x%x" % (fin["eip"], eip))
                        for w, m in zip(fin.get("mem", []), mem):
                            exp = bytes.fromhex(w["hex"])
                            for k in range(len(exp)):
                                if exp[k] != m[k] and w["addr"] + k not in undef.get("mem", []):
                                    diffs.append("mem[0x%x] 0x%02x, oracle 0x%02x" % (w["addr"] + k, exp[k], m[k]))
                                    break
                if diffs:
                    nbad += 1
                    print("  %s #%s [%s]: %s" % (t["name"], t.get("i"), t["bytes"], "; ".join(diffs)))
        print("%s: %d cases, %d differ from the oracle" % (path, n, nbad))
        total += n
        bad += nbad
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out", default=OUT_DEFAULT, help="output folder (default: tests/corpus)")
    ap.add_argument("--form", action="append", default=[], help="generate only this form (repeatable)")
    ap.add_argument("--forms", default=None, help="forms to generate, separated by ';' (names contain commas)")
    ap.add_argument("--sample", type=float, default=None, help="generate a random fraction of the forms")
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--list-forms", action="store_true")
    ap.add_argument("--verify", nargs="+", metavar="FILE",
                    help="run these case files on the oracle and report differences (nothing is generated)")
    ap.add_argument("--no-access-check", action="store_true",
                    help="skip the second, hooked run that checks every data access falls in a window")
    a = ap.parse_args()
    forms = build_forms()
    if a.list_forms:
        for g, nm, n, _ in forms:
            print("%s\t%d\t%s" % (g, n, nm))
        return 0
    if unicorn is None:
        print("generate.py: cannot import unicorn: run with /usr/bin/python3 after "
              "'apt-get install -y python3-unicorn'", file=sys.stderr)
        return 2
    if a.verify:
        return verify(a.verify)
    names = [f[1] for f in forms]
    wanted = list(a.form)
    if a.forms:
        wanted += [s for s in a.forms.split(";") if s]
    if wanted:
        unknown = [w for w in wanted if w not in names]
        if unknown:
            print("unknown form(s): %s" % "; ".join(unknown), file=sys.stderr)
            return 2
        sel = [k for k, nm in enumerate(names) if nm in wanted]
    elif a.sample is not None:
        k = max(1, math.ceil(a.sample * len(names)))
        sel = sorted(random.Random(a.sample_seed).sample(range(len(names)), k))
    else:
        sel = list(range(len(names)))
    oracle = "unicorn-" + unicorn.__version__
    t0 = time.time()
    jobs = [(k, a.seed, oracle, not a.no_access_check) for k in sel]
    if a.jobs > 1 and len(jobs) > 8:
        with multiprocessing.get_context("spawn").Pool(a.jobs) as pool:
            results = pool.map(gen_form, jobs, chunksize=4)
    else:
        results = [gen_form(j) for j in jobs]
    files = {}
    for group, name, lines in results:
        files.setdefault(group, []).extend(lines)
    os.makedirs(a.out, exist_ok=True)
    total = 0
    for group, lines in files.items():
        path = os.path.join(a.out, group + ".jsonl")
        data = "\n".join(lines) + "\n"
        if len(data.encode()) >= 3 << 20:
            print("%s is %d bytes, over 3 MiB" % (path, len(data)), file=sys.stderr)
            return 1
        with open(path, "w") as f:
            f.write(data)
        total += len(lines)
        print("%-40s %6d cases %8d bytes" % (os.path.relpath(path), len(lines), len(data)))
    print("%d forms, %d cases, %.1f s" % (len(sel), total, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
