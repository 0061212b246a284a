"""Deliveries as a whole: manifests, determinism, the fault manifest and the command line."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pydicom
import pytest
from pydicom.errors import InvalidDicomError

from synth import reference as ref
from synth.city import generate
from synth.config import CityConfig
from synth.hira import TABLES

SOURCES = ("registry", "claims", "pharmacy", "centre", "programme")


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_same_arguments_give_the_same_bytes_whatever_the_workers(tmp_path):
    cfg = CityConfig(citizens=400, start=date(2025, 6, 1), days=60, seed=99, inject_faults=True)
    generate(cfg, tmp_path / "a")
    generate(CityConfig(**{**cfg.__dict__, "workers": 2}), tmp_path / "b")
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    generate(CityConfig(**{**cfg.__dict__, "seed": 100}), tmp_path / "c")
    c = _tree(tmp_path / "c")
    assert a["claims/202506/T200_202506.csv"] != c["claims/202506/T200_202506.csv"]


def test_manifests_match_their_files(demo_city):
    checked = 0
    for source in SOURCES:
        for manifest in sorted((demo_city.out / source).rglob("delivery.json")):
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            assert doc["source"] and doc["delivery_id"] == manifest.parent.name
            for entry in doc["files"]:
                data = (manifest.parent / entry["name"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == entry["sha256"]
                assert len(data) == entry["bytes"]
                header = 1 if entry["format"] == "csv" else 0
                assert data.count(b"\n") - header == entry["rows"], entry["name"]
                checked += 1
    assert checked > 100


def _physical_lines(path: Path, encoding: str) -> list[str]:
    return path.read_bytes().decode(encoding).split("\n")


def _bad_date(text: str) -> bool:
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return True
    return False


def test_faults_json_states_exactly_what_is_in_the_claims_files(demo_city):
    """Every recorded claims fault is really in its file, and every broken row is recorded."""
    faults = demo_city.faults
    assert faults["injected"] is True
    kcd = set(ref.codes("kcd")["code"].to_list())
    drugs = set(ref.codes("drugs")["gnl_nm_cd"].to_list())
    rows = demo_city.row_faults()
    whole = demo_city.faulty_files()
    found: dict[str, dict[int, str]] = {}
    for source in ("claims", "pharmacy"):
        for folder, manifest in demo_city.deliveries(source):
            for entry in manifest["files"]:
                rel = (folder / entry["name"]).relative_to(demo_city.out).as_posix()
                if rel in whole:
                    continue
                table = entry["name"].rsplit("_", 1)[0]
                columns = TABLES[table]
                lines = _physical_lines(folder / entry["name"], entry["encoding"])
                for number, line in enumerate(lines[1:-1], start=2):
                    fields = line.split(",")
                    kind = None
                    if len(fields) != len(columns):
                        kind = "malformed_row"
                    else:
                        row = dict(zip(columns, fields, strict=True))
                        if (table == "T400" and row["SICK_CD"] not in kcd) or (
                            table == "T530" and row["GNL_NM_CD"] not in drugs
                        ):
                            kind = "unknown_code"
                        elif table == "T200" and _bad_date(row["RECU_FR_DD"]):
                            kind = "impossible_date"
                    if kind:
                        found.setdefault(rel, {})[number] = kind
    recorded = {
        path: {line: f["kind"] for line, f in by_line.items()}
        for path, by_line in rows.items()
        if path.startswith(("claims/", "pharmacy/"))
    }
    assert found == recorded
    kinds = {k for by_line in found.values() for k in by_line.values()}
    assert kinds == {"malformed_row", "unknown_code", "impossible_date"}


def test_whole_file_faults_are_what_they_claim(demo_city):
    by_kind: dict[str, list[str]] = {}
    for f in demo_city.faults["faults"]:
        if f["line"] is None:
            by_kind.setdefault(f["kind"], []).append(f["path"])
    assert set(by_kind) >= {
        "wrong_encoding",
        "duplicate_delivery",
        "truncated_dicom",
        "corrupt_dicom",
        "not_dicom",
    }
    for path in by_kind["wrong_encoding"]:
        manifest = json.loads((demo_city.out / path).parent.joinpath("delivery.json").read_text())
        entry = next(e for e in manifest["files"] if e["name"] == Path(path).name)
        data = (demo_city.out / path).read_bytes()
        with pytest.raises(UnicodeDecodeError):
            data.decode(entry["encoding"])
    everything = _tree(demo_city.out)
    for path in by_kind["duplicate_delivery"]:
        twins = [k for k, v in everything.items() if v == everything[path] and k != path]
        assert twins, path
    for kind in ("truncated_dicom", "corrupt_dicom", "not_dicom"):
        for path in by_kind[kind]:
            # A truncated file may still parse its header; decoding its pixels must fail.
            with pytest.raises((InvalidDicomError, EOFError, ValueError, OSError, KeyError)):
                ds = pydicom.dcmread(demo_city.out / path)
                _ = ds.pixel_array if "PixelData" in ds else ds.waveform_array(0)
    counts = demo_city.faults["counts"]
    assert sum(counts.values()) == len(demo_city.faults["faults"])


def test_without_faults_nothing_is_broken(small_city, tmp_path):
    cfg = CityConfig(citizens=300, start=date(2025, 3, 1), days=60, seed=3)
    generate(cfg, tmp_path / "clean")
    doc = json.loads((tmp_path / "clean" / "faults.json").read_text(encoding="utf-8"))
    assert doc["injected"] is False and doc["faults"] == []
    for manifest in (tmp_path / "clean").rglob("delivery.json"):
        for entry in json.loads(manifest.read_text(encoding="utf-8"))["files"]:
            text = (manifest.parent / entry["name"]).read_bytes().decode(entry["encoding"])
            if entry["format"] == "csv":
                frame = pl.read_csv(text.encode(), infer_schema=False)
                assert frame.height == entry["rows"]


def test_no_ground_truth_identifies_a_person(demo_city):
    residents = demo_city.table("registry/citizens", "residents_")["RRN"].to_list()
    truth = "".join(
        p.read_text(encoding="utf-8")
        for p in (demo_city.out / "ground_truth").rglob("*")
        if p.is_file()
    )
    assert not any(r in truth for r in residents[:2000])


def test_the_command_line_generates_and_refuses_bad_input(tmp_path):
    gjh = [sys.executable, "-m", "gjh.cli"]
    out = tmp_path / "city"
    run = subprocess.run(
        [*gjh, "synth", "--citizens", "200", "--days", "31", "--seed", "4", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "gjh synth: wrote" in run.stdout
    assert (out / "MANIFEST.json").exists()
    bad = subprocess.run(
        [*gjh, "synth", "--start", "2025-13-01"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    other = tmp_path / "not-ours"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    refused = subprocess.run(
        [*gjh, "synth", "--citizens", "200", "--days", "10", "--out", str(other)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode == 2 and "not empty" in refused.stderr
    assert (other / "keep.txt").read_text() == "mine"
