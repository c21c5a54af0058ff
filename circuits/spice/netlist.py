"""A small, injection-safe SPICE netlist builder (ngspice and Xyce dialects).

Nothing user-supplied is ever interpolated into a netlist as text:

* element, node, model and subcircuit names must match ``[A-Za-z][A-Za-z0-9_]*`` (at most 64
  characters) — no spaces, dots, quotes, braces or newlines, so no ``.control`` block, ``shell``
  command or extra card can be smuggled in through a name;
* numbers are Python floats formatted with 17 significant digits (exact round trip of a
  float64); NaN and inf are refused;
* behavioural (B-source) expressions are assembled by memxbar's own code from validated names
  and formatted numbers (:func:`num`, :func:`v`), never from user strings;
* comments are reduced to printable characters without newlines.

Dialects differ in the option cards (ngspice takes ``.options reltol=...`` while Xyce takes
``.options device``/``.options nonlin``/``.options timeint`` groups) and in one expression
function: ngspice's unit step ``u(x)`` is Xyce's ``stp(x)`` (both 1 for x > 0 and 0 for x < 0),
translated when a Xyce netlist is rendered (:func:`to_xyce_card`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

#: a whole identifier (always used with ``fullmatch``: ``$`` would also accept a trailing newline)
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# ngspice-only expression functions and their Xyce names (a name must not be preceded by an
# identifier character, so node names such as ``V(menu)`` are never touched)
_XYCE_FUNCTIONS = {"u": "stp"}
_XYCE_FUNC_RE = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(_XYCE_FUNCTIONS) + r")\(")
DIALECTS = ("ngspice", "xyce")


class NetlistError(ValueError):
    """An unsafe or invalid value was offered to the netlist builder."""


def ident(name: str, what: str = "name") -> str:
    """Return ``name`` if it is a safe SPICE identifier, else raise :class:`NetlistError`."""
    if not isinstance(name, str) or not _IDENT.fullmatch(name):
        raise NetlistError(f"{what} {name!r} is not a valid identifier: use letters, digits and '_' "
                           "(starting with a letter, at most 64 characters)")
    return name


def num(x, what: str = "value") -> str:
    """Format a finite real number with 17 significant digits."""
    try:
        value = float(x)
    except (TypeError, ValueError) as exc:
        raise NetlistError(f"{what} must be a real number, got {x!r}") from exc
    if not math.isfinite(value):
        raise NetlistError(f"{what} must be finite, got {value}")
    return f"{value:.17g}"


def node(name: str) -> str:
    """A validated node name (``0`` is ground)."""
    return "0" if name == "0" else ident(name, "node name").lower()


def v(n_plus: str, n_minus: str = "0") -> str:
    """Expression text for the voltage between two validated nodes."""
    return f"V({node(n_plus)})" if n_minus == "0" else f"V({node(n_plus)},{node(n_minus)})"


def _comment_text(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in str(text))


@dataclass
class Netlist:
    """Cards of one circuit, rendered by :meth:`render`."""

    title: str
    header: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    subcircuits: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    analysis: str | None = None
    options: dict[str, float] = field(default_factory=dict)
    printed: dict[str, tuple[str, ...]] = field(default_factory=dict)

    # ---------------------------------------------------------------- text
    def comment(self, text: str, *, header: bool = False) -> None:
        (self.header if header else self.body).append("* " + _comment_text(text))

    def section(self, name: str) -> None:
        self.body.append("")
        self.body.append("* ---- " + _comment_text(name))

    # ---------------------------------------------------------------- elements
    def resistor(self, name: str, n1: str, n2: str, ohms: float) -> None:
        if float(ohms) <= 0:
            raise NetlistError(f"resistor {name}: resistance must be > 0 Ω, got {ohms!r}")
        self.body.append(f"R{ident(name)} {node(n1)} {node(n2)} {num(ohms, 'resistance')}")

    def capacitor(self, name: str, n1: str, n2: str, farads: float, ic: float | None = None) -> None:
        card = f"C{ident(name)} {node(n1)} {node(n2)} {num(farads, 'capacitance')}"
        if ic is not None:
            card += f" IC={num(ic, 'initial voltage')}"
        self.body.append(card)

    def vsource(self, name: str, n_plus: str, n_minus: str, dc: float = 0.0,
                pwl: list[tuple[float, float]] | None = None) -> None:
        card = f"V{ident(name)} {node(n_plus)} {node(n_minus)}"
        if pwl is None:
            card += f" DC {num(dc, 'source voltage')}"
        else:
            points = " ".join(f"{num(t, 'time')} {num(val, 'voltage')}" for t, val in pwl)
            card += f" PWL({points})"
        self.body.append(card)

    def isource(self, name: str, n_plus: str, n_minus: str, dc: float = 0.0,
                pwl: list[tuple[float, float]] | None = None) -> None:
        card = f"I{ident(name)} {node(n_plus)} {node(n_minus)}"
        if pwl is None:
            card += f" DC {num(dc, 'source current')}"
        else:
            points = " ".join(f"{num(t, 'time')} {num(val, 'current')}" for t, val in pwl)
            card += f" PWL({points})"
        self.body.append(card)

    def bsource_current(self, name: str, n_plus: str, n_minus: str, expression: "Expr") -> None:
        """Behavioural current source from ``n_plus`` through the source to ``n_minus``."""
        self.body.append(f"B{ident(name)} {node(n_plus)} {node(n_minus)} I={{{expression.text}}}")

    def bsource_voltage(self, name: str, n_plus: str, n_minus: str, expression: "Expr") -> None:
        self.body.append(f"B{ident(name)} {node(n_plus)} {node(n_minus)} V={{{expression.text}}}")

    def instance(self, name: str, nodes: list[str], subckt: str, params: dict[str, float] | None = None) -> None:
        card = f"X{ident(name)} " + " ".join(node(n) for n in nodes) + f" {ident(subckt, 'subcircuit')}"
        if params:
            card += " " + " ".join(f"{ident(k, 'parameter')}={num(val, k)}" for k, val in params.items())
        self.body.append(card)

    def mosfet(self, name: str, drain: str, gate: str, source: str, bulk: str, model: str,
               width: float, length: float) -> None:
        self.body.append(f"M{ident(name)} {node(drain)} {node(gate)} {node(source)} {node(bulk)} "
                         f"{ident(model, 'model')} W={num(width, 'W')} L={num(length, 'L')}")

    def model(self, name: str, kind: str, params: dict[str, float]) -> None:
        kinds = {"nmos", "pmos", "sw", "d"}
        if kind.lower() not in kinds:
            raise NetlistError(f"model kind must be one of {sorted(kinds)}, got {kind!r}")
        args = " ".join(f"{ident(k, 'model parameter')}={num(val, k)}" for k, val in params.items())
        self.models.append(f".model {ident(name, 'model')} {kind.upper()}({args})")

    def subcircuit(self, name: str, pins: list[str], lines: list[str], params: dict[str, float] | None = None) -> None:
        """A subcircuit whose body ``lines`` were produced by another :class:`Netlist`
        (use :meth:`body_lines` of a builder, never raw user text)."""
        head = f".subckt {ident(name, 'subcircuit')} " + " ".join(node(p) for p in pins)
        if params:
            head += " params: " + " ".join(f"{ident(k, 'parameter')}={num(val, k)}" for k, val in params.items())
        self.subcircuits.extend([head, *lines, f".ends {name}"])

    def body_lines(self) -> list[str]:
        return list(self.body)

    # ---------------------------------------------------------------- analyses
    def op(self) -> None:
        self.analysis = ".op"

    def tran(self, step: float, stop: float, max_step: float | None = None, uic: bool = False) -> None:
        card = f".tran {num(step, 'tran step')} {num(stop, 'tran stop')}"
        if max_step is not None:
            card += f" 0 {num(max_step, 'tran max step')}"
        if uic:
            card += " uic"
        self.analysis = card

    def set_options(self, **values: float) -> None:
        for key, val in values.items():
            self.options[ident(key, "option")] = float(num(val, key))

    def print_current(self, output: str, sources: list[str]) -> None:
        """Print ``output`` = the sum of the branch currents (A) of the voltage sources ``sources``
        (names as given to :meth:`vsource`, without the ``V``) when the operating-point netlist is
        run on its own: ngspice (``ngspice -b file.cir``) prints ``<output> = <value>`` lines from
        a ``.control`` block (``op``, ``print``, ``quit``); Xyce gets a ``.print dc`` card. A source's
        branch current flows from its + node through the source to its - node."""
        if not sources:
            raise NetlistError(f"print_current {output!r}: at least one source is needed")
        self.printed[ident(output, "output")] = tuple(ident(name, "voltage source") for name in sources)

    # ---------------------------------------------------------------- output
    def render(self, dialect: str = "ngspice") -> str:
        if dialect not in DIALECTS:
            raise NetlistError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
        if self.analysis is None:
            raise NetlistError("no analysis: call op() or tran() first")
        lines = ["* " + _comment_text(self.title), *self.header]
        cards = self.models + self.subcircuits + self.body
        lines += cards if dialect == "ngspice" else [to_xyce_card(card) for card in cards]
        lines.append("")
        lines += self._option_cards(dialect)
        lines.append(self.analysis)
        lines += self._print_cards(dialect)
        lines += [".end", ""]
        return "\n".join(lines)

    def _print_cards(self, dialect: str) -> list[str]:
        if not self.printed:
            return []
        if self.analysis != ".op":
            raise NetlistError("printed currents need the operating-point analysis (op())")
        if dialect == "xyce":
            terms = ["{" + "+".join(f"I(V{name})" for name in sources) + "}" if len(sources) > 1 else
                     f"I(V{sources[0]})" for sources in self.printed.values()]
            cards = [f"* printed: {', '.join(self.printed)} (A, in this order)"]
            chunks = [terms[k:k + 8] for k in range(0, len(terms), 8)]
            cards.append(".print dc " + " ".join(chunks[0]))
            cards += ["+ " + " ".join(chunk) for chunk in chunks[1:]]
            return cards
        cards = [".control", "op", "set numdgt=15"]
        for output, sources in self.printed.items():
            cards.append(f"let {output} = " + " + ".join(f"v{name.lower()}#branch" for name in sources))
        cards += [f"print {output}" for output in self.printed]
        cards += ["quit", ".endc"]
        return cards

    def _option_cards(self, dialect: str) -> list[str]:
        if not self.options:
            return []
        if dialect == "ngspice":
            return [".options " + " ".join(f"{k}={num(val)}" for k, val in self.options.items())]
        # Xyce groups its tolerances by solver: NONLIN (DC Newton) and TIMEINT (transient);
        # ngspice-only options (vntol, itl*, ...) have no Xyce equivalent and are noted.
        cards = []
        for key, val in self.options.items():
            low = key.lower()
            if low in ("reltol", "abstol"):
                cards.append(f".options nonlin {low}={num(val)}")
                cards.append(f".options timeint {low}={num(val)}")
            elif low == "gmin":
                cards.append(f".options device gmin={num(val)}")
            else:
                cards.append(f"* ngspice option {low}={num(val)} has no Xyce equivalent")
        return cards


def to_xyce_card(card: str) -> str:
    """Translate the ngspice-only functions of a behavioural card (``B...``) to Xyce's names
    (``u(x)`` → ``stp(x)``); comments and other cards are returned unchanged."""
    if card[:1] not in ("B", "b"):
        return card
    return _XYCE_FUNC_RE.sub(lambda m: _XYCE_FUNCTIONS[m.group(1)] + "(", card)


@dataclass(frozen=True)
class Expr:
    """A behavioural expression built only from validated names and formatted numbers."""

    text: str

    def __add__(self, other: "Expr") -> "Expr":
        return Expr(f"({self.text})+({other.text})")

    def __sub__(self, other: "Expr") -> "Expr":
        return Expr(f"({self.text})-({other.text})")

    def __mul__(self, other: "Expr") -> "Expr":
        return Expr(f"({self.text})*({other.text})")

    def __truediv__(self, other: "Expr") -> "Expr":
        return Expr(f"({self.text})/({other.text})")

    def __neg__(self) -> "Expr":
        return Expr(f"-({self.text})")


def const(x: float) -> Expr:
    return Expr(num(x))


def volt(n_plus: str, n_minus: str = "0") -> Expr:
    return Expr(v(n_plus, n_minus))


def func(name: str, *args: Expr) -> Expr:
    allowed = {"sinh", "cosh", "exp", "ln", "log", "sqrt", "abs", "sgn", "tanh", "atan", "min", "max", "u", "pow"}
    if name not in allowed:
        raise NetlistError(f"function {name!r} is not allowed in expressions (allowed: {sorted(allowed)})")
    return Expr(f"{name}(" + ",".join(a.text for a in args) + ")")
