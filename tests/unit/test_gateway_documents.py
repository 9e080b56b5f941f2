"""What the gateway keeps of an uploader's file name, and the name a
download is saved under."""

import pytest

from ksmart_gateway.documents import download_name, safe_filename


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("scan.pdf", "scan.pdf"),
        ("ജനന സർട്ടിഫിക്കറ്റ്.pdf", "ജനന സർട്ടിഫിക്കറ്റ്.pdf"),  # vowel signs survive
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\asha\\aadhaar.png", "aadhaar.png"),
        ("\u202egpj.exe", "_gpj.exe"),  # a right-to-left override is not kept
        ('report"; filename="x.pdf', "report__ filename__x.pdf"),
        ("...", None),
        (None, None),
    ],
)
def test_an_uploaders_file_name_is_a_label_nothing_can_trip_on(given, kept):
    assert safe_filename(given) == kept


def test_a_long_name_is_cut_to_the_limit():
    assert len(safe_filename("a" * 1000 + ".pdf")) == 255


def test_a_download_is_named_by_the_document_code_and_its_real_type():
    assert download_name("ration_card", {"media_type": "image/png"}) == "ration_card.png"
    assert download_name("deed", {"media_type": "application/pdf"}) == "deed.pdf"
