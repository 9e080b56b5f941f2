"""The certificate as a PDF (ksmart_gateway.certificate_pdf)."""

import base64
import re
import zlib

import pytest

from ksmart_gateway import certificate_pdf
from tests.support import certificates

# -- the PDF -----------------------------------------------------------------------


def _page_text(pdf: bytes) -> str:
    """The decoded content streams of a PDF (reportlab writes them as
    ASCII85 over Flate), as text."""
    texts = []
    for stream in re.findall(rb"stream\r?\n(.*?)\s*endstream", pdf, re.S):
        try:
            data = stream.strip()
            if data.endswith(b"~>"):
                data = base64.a85decode(data, adobe=True)
            texts.append(zlib.decompress(data).decode("latin-1"))
        except (ValueError, zlib.error):
            continue
    return "\n".join(texts)


def test_pdf_is_deterministic_and_shows_the_certificate():
    key = certificates.key()
    document = certificates.issue(key)
    fields = certificates.definition("trade-licence")["fields"]
    pdf = certificate_pdf.render_pdf(document, fields=fields)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert certificate_pdf.render_pdf(document, fields=fields) == pdf
    text = _page_text(pdf)
    for shown in (
        f"({certificates.NUMBER}) Tj",
        "(Anitha Krishnan) Tj",
        "(Trade licence) Tj",
        "(Kind of trade) Tj",  # the field's label
        "(Bakery) Tj",  # the choice's label, not its value
        "(2027-01-14) Tj",
        "/api/v1/certificates/KL-EKM-KOC/TL/2026/000123,",
        key.kid,
    ):
        assert shown in text, shown
    # Dated by the issue time, not by when it was rendered.
    assert b"/CreationDate (D:20260115103000+00'00')" in pdf


def test_pdf_of_another_certificate_differs():
    key = certificates.key()
    one = certificate_pdf.render_pdf(certificates.issue(key))
    other = certificate_pdf.render_pdf(
        certificates.issue(key, form={**certificates.TRADE_FORM, "licensee_name": "Biju"})
    )
    assert one != other


@pytest.mark.parametrize("lang", ["en", "ml", "fr"])
def test_pdf_never_fails_for_want_of_a_malayalam_font(lang, monkeypatch, tmp_path):
    key = certificates.key()
    document = certificates.issue(key, "birth-certificate", certificates.BIRTH_FORM)
    for font in (
        None,
        "/no/such/font.ttf",
        str(tmp_path),
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    ):
        if font is None:
            monkeypatch.delenv(certificate_pdf.MALAYALAM_FONT_ENV, raising=False)
        else:
            monkeypatch.setenv(certificate_pdf.MALAYALAM_FONT_ENV, font)
        pdf = certificate_pdf.render_pdf(document, lang)
        assert pdf.startswith(b"%PDF-")
        assert certificates.NUMBER in _page_text(pdf)


def test_render_pdf_refuses_what_is_not_a_certificate():
    with pytest.raises(ValueError, match="not a certificate"):
        certificate_pdf.render_pdf(
            {"payload": {"certificate_number": certificates.NUMBER}, "signature": ""}
        )
