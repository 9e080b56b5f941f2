"""The certificate as a PDF: what the gateway hands a citizen who downloads a
granted file's certificate, drawn from the signed document (its payload is
ksmart_common.domain.certificate's) with the QR code that carries it.

A TrueType font with Malayalam glyphs: the file named in
KSMART_CERTIFICATE_MALAYALAM_FONT if given, else the first of
MALAYALAM_FONT_FILES found under FONT_DIRS. Malayalam is drawn only with such
a font AND the harfbuzz shaper (uharfbuzz) that reportlab uses for complex
scripts: unshaped Malayalam puts vowel signs on the wrong side and breaks
conjuncts, which is worse than leaving it out. Without either, the PDF is in
English only and Malayalam characters in answers show as "?".
"""

from __future__ import annotations

import hashlib
import io
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from ksmart_common.domain.certificate import (
    VERIFY_PATH,
    parse_issued_at,
    payload_problems,
    qr_text,
)
from ksmart_common.domain.local_time import IST

MALAYALAM_FONT_ENV = "KSMART_CERTIFICATE_MALAYALAM_FONT"
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
MALAYALAM_FONT_FILES = (
    "NotoSansMalayalam-Regular.ttf",
    "NotoSerifMalayalam-Regular.ttf",
    "Rachana-Regular.ttf",
    "Rachana.ttf",
    "Meera-Regular.ttf",
    "Meera.ttf",
    "Lohit-Malayalam.ttf",
    "AnjaliOldLipi-Regular.ttf",
    "AnjaliOldLipi.ttf",
)

LABELS: dict[str, dict[str, str]] = {
    "heading": {
        "en": "K-Smart: local self-government services, Kerala",
        "ml": "കെ-സ്മാർട്ട്: തദ്ദേശ സ്വയംഭരണ സേവനങ്ങൾ, കേരളം",
    },
    "certificate_number": {"en": "Certificate number", "ml": "സർട്ടിഫിക്കറ്റ് നമ്പർ"},
    "holder": {"en": "Name", "ml": "പേര്"},
    "local_body": {"en": "Local body", "ml": "തദ്ദേശ സ്ഥാപനം"},
    "issued_on": {"en": "Issued on", "ml": "നൽകിയ തീയതി"},
    "valid_until": {"en": "Valid until", "ml": "കാലാവധി"},
    "no_expiry": {"en": "Does not expire", "ml": "ബാധകമല്ല"},
    "particulars": {"en": "Particulars", "ml": "വിവരങ്ങൾ"},
    "verify": {
        "en": (
            "Verify this certificate at {url}, or offline: scan the QR code and check "
            "its Ed25519 signature with the published certificate key {kid}."
        ),
        "ml": (
            "ഈ സർട്ടിഫിക്കറ്റ് {url} എന്ന വിലാസത്തിൽ പരിശോധിക്കാം; അല്ലെങ്കിൽ QR കോഡ് "
            "സ്കാൻ ചെയ്ത്, പ്രസിദ്ധീകരിച്ച സർട്ടിഫിക്കറ്റ് കീ {kid} ഉപയോഗിച്ച് ഒപ്പ് "
            "ഓഫ്‌ലൈനായി പരിശോധിക്കാം."
        ),
    },
    "signed": {
        "en": "Digitally signed: it needs no handwritten signature or seal.",
        "ml": "ഡിജിറ്റലായി ഒപ്പിട്ടത്: കൈയൊപ്പോ സീലോ ആവശ്യമില്ല.",
    },
}

_LATIN = "Helvetica"
_LATIN_BOLD = "Helvetica-Bold"
_MALAYALAM_FONT_NAME = "KSmartMalayalam"


def _is_malayalam(char: str) -> bool:
    # The Malayalam block, plus the joiners Malayalam spelling uses.
    return "\u0d00" <= char <= "\u0d7f" or char in "\u200c\u200d"


@lru_cache(maxsize=4)
def _malayalam_font(path: str | None) -> str | None:
    """The registered name of a usable Malayalam font, or None."""
    try:
        from reportlab.pdfbase import pdfmetrics, ttfonts
        from reportlab.pdfbase.ttfonts import TTFont

        if ttfonts.uharfbuzz is None:
            return None
        candidates = [path] if path else _font_files()
        for candidate in candidates:
            try:
                tag = hashlib.sha256(candidate.encode("utf-8")).hexdigest()[:8]
                font = TTFont(f"{_MALAYALAM_FONT_NAME}-{tag}", candidate)
            except Exception:  # not TrueType (an OpenType/CFF font), unreadable, ...
                continue
            if all(ord(char) in font.face.charToGlyph for char in "കൈന്ൾ") and font.shapable:
                pdfmetrics.registerFont(font)
                return font.fontName
    except Exception:
        return None
    return None


def _font_files() -> list[str]:
    found: dict[str, str] = {}
    for root_dir in FONT_DIRS:
        for root, _dirs, files in sorted(os.walk(root_dir)):
            for name in sorted(files):
                found.setdefault(name, os.path.join(root, name))
    return [found[name] for name in MALAYALAM_FONT_FILES if name in found]


def malayalam_font_available() -> bool:
    """Whether render_pdf can write Malayalam on this machine."""
    return _malayalam_font(os.environ.get(MALAYALAM_FONT_ENV) or None) is not None


class _Writer:
    """Draws mixed English and Malayalam text: Malayalam runs in the
    Malayalam font (shaped), the rest in Helvetica."""

    def __init__(self, canvas: Any, malayalam: str | None) -> None:
        self.canvas = canvas
        self.malayalam = malayalam

    def runs(self, text: str, bold: bool) -> list[tuple[str, str]]:
        latin = _LATIN_BOLD if bold else _LATIN
        runs: list[tuple[str, str]] = []
        for char in unicodedata.normalize("NFC", text):
            if _is_malayalam(char) and self.malayalam:
                font = self.malayalam
            else:
                font = latin
                if not _latin_drawable(char):
                    char = "?"
            if runs and runs[-1][0] == font:
                runs[-1] = (font, runs[-1][1] + char)
            else:
                runs.append((font, char))
        return runs

    def _shaped(self, font: str, text: str, size: float) -> tuple[Any, float]:
        if font == self.malayalam:
            from reportlab.pdfbase.ttfonts import ShapedStr, shapeStr

            shaped = shapeStr(text, font, size)
            if isinstance(shaped, ShapedStr):
                width = sum(glyph.x_advance for glyph in shaped.__shapeData__) * size / 1000
                return shaped, width
        return text, self.canvas.stringWidth(text, font, size)

    def width(self, text: str, size: float, bold: bool = False) -> float:
        return sum(self._shaped(font, run, size)[1] for font, run in self.runs(text, bold))

    def draw(self, x: float, y: float, text: str, size: float, bold: bool = False) -> float:
        for font, run in self.runs(text, bold):
            shaped, width = self._shaped(font, run, size)
            self.canvas.setFont(font, size)
            self.canvas.drawString(x, y, shaped)
            x += width
        return x

    def draw_centred(self, x: float, y: float, text: str, size: float, bold: bool = False) -> None:
        self.draw(x - self.width(text, size, bold) / 2, y, text, size, bold)

    def wrap(self, text: str, size: float, max_width: float, bold: bool = False) -> list[str]:
        lines: list[str] = []
        line = ""
        for word in text.split():
            candidate = f"{line} {word}" if line else word
            if line and self.width(candidate, size, bold) > max_width:
                lines.append(line)
                line = word
            else:
                line = candidate
        return [*lines, line] if line else lines


def _latin_drawable(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return char.isprintable()


def _humanise(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def _particular_rows(
    found: Mapping[str, Any], fields: Sequence[Mapping[str, Any]] | None, lang: str
) -> Iterable[tuple[str, str]]:
    specs = {spec["name"]: spec for spec in fields or ()}
    for name, value in found.items():
        spec = specs.get(name, {})
        label = (spec.get("label") or {}).get(lang) or _humanise(name)
        text = str(value)
        for choice in spec.get("choices", ()):
            if choice.get("value") == value:
                text = (choice.get("label") or {}).get(lang) or text
        yield label, text


def render_pdf(
    document: Mapping[str, Any],
    lang: str = "en",
    *,
    fields: Sequence[Mapping[str, Any]] | None = None,
    base_url: str = "",
) -> bytes:
    """The printable certificate: an A4 PDF with its QR code.

    `lang` ("en" or "ml") is the language of the labels; Malayalam falls
    back to English where no Malayalam font is usable (see MALAYALAM_FONT_ENV).
    `fields`: the definition's fields, for the particulars' labels and
    choice labels (else the field names, humanised). `base_url` prefixes the
    verification path. The same arguments give the same bytes on the same
    machine: the PDF's dates are the issue time, and reportlab's invariant
    mode fixes its ID."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    payload = document.get("payload") if isinstance(document, Mapping) else None
    problems = payload_problems(payload) if isinstance(payload, Mapping) else ["no payload"]
    if problems:
        raise ValueError(f"not a certificate: {'; '.join(problems)}")
    assert payload is not None

    malayalam = _malayalam_font(os.environ.get(MALAYALAM_FONT_ENV) or None)
    lang = "ml" if lang == "ml" and malayalam else "en"

    def label(key: str) -> str:
        return LABELS[key][lang]

    issued = parse_issued_at(payload["issued_at"])
    pdf_date = issued.strftime("D:%Y%m%d%H%M%S+00'00'")
    number = payload["certificate_number"]

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=1, pageCompression=1, lang=lang)
    canvas.setDateFormatter(lambda *_: pdf_date)
    canvas.setTitle(f"{payload['title']['en']} {number}")
    canvas.setSubject(payload["title"]["en"])
    canvas.setAuthor(f"K-Smart, {payload['local_body']}")
    canvas.setCreator("K-Smart")
    writer = _Writer(canvas, malayalam)

    width, height = A4
    margin = 20 * mm
    text_width = width - 2 * margin
    y = height - margin

    writer.draw_centred(width / 2, y, label("heading"), 10)
    y -= 8 * mm
    canvas.setLineWidth(0.8)
    canvas.line(margin, y, width - margin, y)
    y -= 14 * mm
    for line in writer.wrap(payload["title"]["en"], 20, text_width, bold=True):
        writer.draw_centred(width / 2, y, line, 20, bold=True)
        y -= 9 * mm
    if malayalam:
        for line in writer.wrap(payload["title"]["ml"], 17, text_width):
            writer.draw_centred(width / 2, y, line, 17)
            y -= 9 * mm
    y -= 6 * mm

    label_width = 55 * mm
    value_width = text_width - label_width

    # Rows stop above the QR code; any more go on to a next page (only an
    # extreme form gets there: particulars are few and short).
    qr_size = 55 * mm
    lowest = margin + qr_size + 8 * mm

    def row(name: str, value: str, bold: bool = False) -> None:
        nonlocal y
        names = writer.wrap(name, 10, label_width - 4 * mm) or [""]
        values = writer.wrap(value, 11, value_width, bold) or [""]
        for index in range(max(len(names), len(values))):
            if y < lowest:
                canvas.showPage()
                y = height - margin
            if index < len(names):
                writer.draw(margin, y, names[index], 10)
            if index < len(values):
                writer.draw(margin + label_width, y, values[index], 11, bold)
            y -= 6 * mm
        y -= 1.5 * mm

    row(label("certificate_number"), number, bold=True)
    if payload["holder_name"] is not None:
        row(label("holder"), payload["holder_name"], bold=True)
    row(label("local_body"), payload["local_body"])
    row(label("issued_on"), issued.astimezone(IST).date().isoformat())
    row(label("valid_until"), payload["valid_until"] or label("no_expiry"))

    if payload["particulars"]:
        y -= 4 * mm
        writer.draw(margin, y, label("particulars"), 12, bold=True)
        y -= 7 * mm
        for name, value in _particular_rows(payload["particulars"], fields, lang):
            row(name, value)

    # The QR code, bottom right; the verification note beside it.
    widget = QrCodeWidget(qr_text(document), barLevel="M", barBorder=4)
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(
        qr_size, qr_size, transform=[qr_size / (x1 - x0), 0, 0, qr_size / (y1 - y0), 0, 0]
    )
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, width - margin - qr_size, margin)

    note_width = text_width - qr_size - 8 * mm
    url = base_url.rstrip("/") + VERIFY_PATH.format(number=number)
    note = label("verify").format(url=url, kid=payload["kid"])
    note_y = margin + qr_size - 12 * mm
    for line in writer.wrap(note, 9, note_width):
        writer.draw(margin, note_y, line, 9)
        note_y -= 4.5 * mm
    note_y -= 2 * mm
    for line in writer.wrap(label("signed"), 9, note_width):
        writer.draw(margin, note_y, line, 9)
        note_y -= 4.5 * mm

    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
