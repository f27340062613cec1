"""The whole April 2026 release, loaded once: slow (several seconds), so marked."""

import pytest

from ambula.terminology.icd10 import icd10_load_package
from ambula.terminology.models import CodeSetRelease, Icd10Code, Icd10Word
from ambula.terminology.selectors import icd10_get, icd10_search


@pytest.mark.slow
@pytest.mark.django_db
def test_the_bundled_release_loads_whole():
    release = icd10_load_package()

    assert release.release == "April 2026"
    assert release.code_count == Icd10Code.objects.count() > 95_000
    assert Icd10Code.objects.filter(billable=True).count() > 70_000
    assert icd10_get("E11.9").billable
    assert not icd10_get("E11").billable
    assert CodeSetRelease.objects.get(code_set="ICD-10-CM").code_count == release.code_count
    assert Icd10Word.objects.filter(code="E11.9", word="diabetes").exists()
    assert "E11.9" in [code.code for code in icd10_search("type 2 diab")]
    assert [code.code for code in icd10_search("e11.9")] == ["E11.9"]
