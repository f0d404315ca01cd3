"""Bad rows are reported with line, field and reason; good rows in the same file go in."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recommender.errors import InvalidInputError
from recommender.intake.files import CatalogFormat, RawRow, detect_format, parse_product_row, read_rows
from recommender.intake.jobs import RowError
from recommender.models import Product


def parsed(path: Path, file_format: CatalogFormat) -> list[Product | RowError]:
    results: list[Product | RowError] = []
    for row in read_rows(path, file_format):
        results.append(row if isinstance(row, RowError) else parse_product_row(row))
    return results


def errors_by_line(results: list[Product | RowError]) -> dict[int, RowError]:
    return {result.line: result for result in results if isinstance(result, RowError)}


def test_csv_reports_each_bad_row_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_bytes(
        b"product_id,title,price,in_stock,attr.colour,description\n"
        b"a1,Good shoe,10.5,true,blue,Fine\n"
        b"a2,,5,true,,empty title\n"
        b"a3,Bad price,abc,true,,\n"
        b'a4,"Multi\nline title",3,no,red,ok\n'
        b"a5,Broken \xff\xfe bytes,3,true,,\n"
        b"a6,Too,many,columns,here,x,y\n"
        b"a7,Last good,1,false,green,\n"
    )
    results = parsed(path, CatalogFormat.CSV)
    products = [result for result in results if isinstance(result, Product)]
    assert [product.product_id for product in products] == ["a1", "a4", "a7"]
    assert products[0].attributes == {"colour": "blue"} and products[0].price == 10.5
    assert products[1].in_stock is False
    errors = errors_by_line(results)
    assert set(errors) == {3, 4, 7, 8}
    assert errors[3].field == "title"
    assert errors[4].field == "price" and "number" in errors[4].reason
    assert "UTF-8" in errors[7].reason
    assert "columns" in errors[8].reason


def test_jsonl_reports_invalid_json_unknown_fields_and_wrong_types(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    lines = [
        json.dumps({"product_id": 1, "title": "Numeric id is fine"}),
        "{not json",
        json.dumps({"product_id": "b", "title": "x", "colour": "red"}),
        json.dumps(["a", "list"]),
        "",
        json.dumps({"product_id": "c", "title": "x", "price": "cheap"}),
        json.dumps({"product_id": "d", "title": "Good"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    results = parsed(path, CatalogFormat.JSONL)
    assert [r.product_id for r in results if isinstance(r, Product)] == ["1", "d"]
    errors = errors_by_line(results)
    assert set(errors) == {2, 3, 4, 6}
    assert "invalid JSON" in errors[2].reason
    assert errors[3].field == "colour" and "unknown field" in errors[3].reason
    assert "JSON object" in errors[4].reason
    assert errors[6].field == "price" and errors[6].product_id == "c"


def test_jsonl_line_with_broken_encoding_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_bytes(b'{"product_id": "a", "title": "ok"}\n{"product_id": "b", "title": "\xc3\x28"}\n')
    results = parsed(path, CatalogFormat.JSONL)
    assert isinstance(results[0], Product)
    assert isinstance(results[1], RowError) and results[1].line == 2 and "UTF-8" in results[1].reason


def test_parquet_rows_are_numbered_and_attr_columns_become_attributes(tmp_path: Path) -> None:
    path = tmp_path / "catalog.parquet"
    table = pa.table(
        {
            "product_id": ["p1", "p2", "p3"],
            "title": ["Kettle", None, "Toaster"],
            "price": [20.0, 5.0, -3.0],
            "attr.colour": ["white", None, "red"],
        }
    )
    pq.write_table(table, path)
    results = parsed(path, CatalogFormat.PARQUET)
    assert isinstance(results[0], Product) and results[0].attributes == {"colour": "white"}
    errors = errors_by_line(results)
    assert errors[2].field == "title"
    assert errors[3].field == "price"


def test_a_long_description_is_a_product_and_one_past_the_models_limit_is_a_row_error() -> None:
    long_row = RawRow(5, {"product_id": "long", "title": "Long", "description": "word " * 3000})
    product = parse_product_row(long_row)
    assert isinstance(product, Product) and len(product.description) == len("word " * 3000) - 1
    too_long = parse_product_row(RawRow(6, {"product_id": "big", "title": "Big", "description": "x" * 20001}))
    assert isinstance(too_long, RowError)
    assert too_long.line == 6 and too_long.field == "description" and "20000" in too_long.reason


def test_format_is_detected_from_the_name_or_refused() -> None:
    assert detect_format(Path("a.ndjson")) is CatalogFormat.JSONL
    assert detect_format(Path("a.bin"), "parquet") is CatalogFormat.PARQUET
    with pytest.raises(InvalidInputError):
        detect_format(Path("catalog.xlsx"))
    with pytest.raises(InvalidInputError):
        detect_format(Path("a.csv"), "xml")
