"""The command line: a resource file that cannot work is a message and exit status 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from doraflow.cli import main


def test_a_missing_config_file_is_one_line_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert main(["up", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"doraflow up: {missing}: cannot be read: No such file or directory"


def test_an_invalid_resource_names_the_document_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "doraflow.yaml"
    config.write_text(
        "apiVersion: doraflow.io/v1alpha1\nkind: Integration\nmetadata: {name: gh}\n"
        "spec: {organizationRef: {name: acme}, provider: nosuchprovider}\n"
    )
    assert main(["up", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"doraflow up: {config} document 1")
    assert "provider" in err
    assert "Traceback" not in err
