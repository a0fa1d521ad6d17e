"""The questionnaire: derived defaults, and validators that refuse bad answers clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .support.project import answers_of, render
from .support.questions import choices, toggles

# Questions copier.yml asks only after a given answer (their `when`).
ASKED_ONLY_WITH = {"vault_auth": {"secrets_backend": "vault"}}


@pytest.mark.parametrize(
    ("project_name", "slug", "package"),
    [
        ("My Service", "my-service", "my_service"),
        ("X", "x", "x"),
        ("2nd Gen Billing-API v3", "svc-2nd-gen-billing-api-v3", "svc_2nd_gen_billing_api_v3"),
        (
            "Überwachungs-Dienst für Zähler",
            "uberwachungs-dienst-fur-zahler",
            "uberwachungs_dienst_fur_zahler",
        ),
        ("日本語サービス", "service", "service"),
        ("  --Trailing & Leading--  ", "trailing-leading", "trailing_leading"),
    ],
)
def test_slug_and_package_derive_from_the_name(
    copie: Any, project_name: str, slug: str, package: str
) -> None:
    # pytest-copie passes extra_answers as user defaults: exactly a user who only
    # answers the name and accepts the derived slug and package.
    result = copie.copy(extra_answers={"project_name": project_name})
    assert result.exit_code == 0, result.exception
    assert (result.answers["project_slug"], result.answers["package_name"]) == (slug, package)
    assert answers_of(result.project_dir)["package_name"] == package
    assert (result.project_dir / "src" / package / "__init__.py").is_file()


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_name": ""}, "project_name must not be empty"),
        ({"project_name": "x" * 65}, "at most 64"),
        ({"project_name": "two\nlines"}, "one line of printable characters"),
        ({"project_slug": "Bad_Slug"}, "is not a DNS-1123 label"),
        ({"project_slug": "-leading"}, "starting with a letter"),
        ({"project_slug": "trailing-"}, "not ending with '-'"),
        ({"project_slug": "a" * 64}, "1 to 63 characters"),
        ({"project_slug": "9lives"}, "is not a DNS-1123 label"),
        ({"package_name": "My-Package"}, "lower-case letters, digits and '_'"),
        ({"package_name": "1abc"}, "starting with a letter"),
        ({"package_name": "class"}, "is a Python keyword"),
        ({"package_name": "json"}, "shadow the standard library"),
        ({"package_name": "asyncio"}, "shadow the standard library"),
        ({"package_name": "fastapi"}, "shadow a module the project depends on"),
        ({"package_name": "structlog"}, "shadow a module the project depends on"),
        ({"package_name": "tests"}, "shadow a module the project depends on"),
        ({"description": "line one\nline two"}, "description must be one line"),
        ({"author_name": "tab\there"}, "author_name must be one line"),
        ({"author_email": "not-an-email"}, "is not an e-mail address"),
        ({"author_email": "a@b"}, "is not an e-mail address"),
        ({"python_version": "3.10"}, str(choices("python_version"))),
        # Every other toggle refuses a value outside its choices, naming them.
        *(
            ({key: "not-a-choice", **ASKED_ONLY_WITH.get(key, {})}, str(choices(key)))
            for key in toggles()
            if key != "python_version"
        ),
    ],
)
def test_a_bad_answer_is_refused_saying_what_is_allowed_and_nothing_is_written(
    tmp_path: Path, answers: dict[str, str], message: str
) -> None:
    dest = tmp_path / "out"
    question = next(iter(answers))
    with pytest.raises(ValueError, match=question) as refused:
        render(dest, **answers)
    assert message in str(refused.value)
    assert not dest.exists() or not any(dest.iterdir())
