"""Catalogs in the shapes shops export: Google Merchant Center (TSV and RSS XML), Shopify's product CSV,
and any other file through a field mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender.intake.feeds.mapping import FieldMapping
from recommender.intake.files import CatalogFormat, detect_format
from recommender.intake.rows import ProductRows
from recommender.models import Product
from recommender.service import RecommenderService
from recommender.store.conditions import filterable_values
from recommender.text import compose_product_text

MERCHANT_TSV = (
    "\t".join(
        [
            "id",
            "title",
            "description",
            "link",
            "image_link",
            "availability",
            "price",
            "sale_price",
            "brand",
            "gtin",
            "mpn",
            "condition",
            "product_type",
            "google_product_category",
            "color",
            "size",
            "material",
            "custom_label_0",
        ]
    )
    + "\n"
    + "\n".join(
        [
            "\t".join(
                [
                    "TENT-2P",
                    "Alpine 2-person tent",
                    "<p>Light <b>3-season</b> tent.</p><ul><li>2.1 kg</li></ul>",
                    "https://shop.example/tent",
                    "https://shop.example/tent.jpg",
                    "in stock",
                    "249.00 USD",
                    "199.00 USD",
                    "Summit",
                    "04012345678901",
                    "AT-2P",
                    "new",
                    "Sports > Camping > Tents",
                    "Sporting Goods > Outdoor Recreation > Camping & Hiking > Tents",
                    "green",
                    "2P",
                    "nylon",
                    "summer-sale",
                ]
            ),
            "\t".join(
                [
                    "LAMP-01",
                    "Camp lantern",
                    "Bright &amp; rechargeable",
                    "https://shop.example/lamp",
                    "",
                    "out of stock",
                    "35,50 EUR",
                    "",
                    "Lumo",
                    "",
                    "",
                    "new",
                    "Sports > Camping > Lighting",
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            ),
            "\t".join(
                [
                    "BAD-1",
                    "Broken price",
                    "x",
                    "",
                    "",
                    "in stock",
                    "cheap",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            ),
        ]
    )
)

MERCHANT_XML = """<?xml version="1.0"?>
<rss xmlns:g="http://base.google.com/ns/1.0" version="2.0">
<channel>
<title>Example shop</title>
<item>
  <g:id>KETTLE-1</g:id>
  <g:title>Brewmaster kettle 1.7 L</g:title>
  <g:description><![CDATA[<p>Boils in <em>3 minutes</em>.</p>]]></g:description>
  <g:link>https://shop.example/kettle</g:link>
  <g:availability>in_stock</g:availability>
  <g:price>45.00 GBP</g:price>
  <g:brand>Brewmaster</g:brand>
  <g:product_type>Home &gt; Kitchen &gt; Appliances</g:product_type>
  <g:color>steel</g:color>
</item>
<item>
  <g:id>MUG-2</g:id>
  <title>Stoneware mug</title>
  <g:price>9.90 GBP</g:price>
  <g:availability>preorder</g:availability>
</item>
</channel>
</rss>
"""

SHOPIFY_HEADER = [
    "Handle",
    "Title",
    "Body (HTML)",
    "Vendor",
    "Product Category",
    "Type",
    "Tags",
    "Published",
    "Option1 Name",
    "Option1 Value",
    "Option2 Name",
    "Option2 Value",
    "Variant SKU",
    "Variant Inventory Qty",
    "Variant Price",
    "Variant Compare At Price",
    "Image Src",
    "Status",
]
SHOPIFY_ROWS = [
    [
        "trail-runner",
        "Trail Runner 3",
        "<p>Grippy <strong>trail</strong> shoe.</p>",
        "Fleetfoot",
        "Apparel & Accessories > Shoes",
        "Running shoes",
        "trail, running",
        "TRUE",
        "Size",
        "42",
        "Color",
        "Red",
        "TR3-42-R",
        "3",
        "120.00",
        "140.00",
        "https://cdn.example/tr3.jpg",
        "active",
    ],
    ["trail-runner", "", "", "", "", "", "", "", "", "43", "", "Red", "TR3-43-R", "0", "120.00", "", "", ""],
    ["trail-runner", "", "", "", "", "", "", "", "", "44", "", "Blue", "TR3-44-B", "1", "110.00", "", "", ""],
    [
        "trail-runner",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "https://cdn.example/2.jpg",
        "",
    ],
    [
        "winter-hat",
        "Winter hat",
        "Warm.",
        "Knitco",
        "",
        "Hats",
        "",
        "TRUE",
        "Title",
        "Default Title",
        "",
        "",
        "HAT-1",
        "0",
        "25.00",
        "",
        "",
        "active",
    ],
    [
        "secret-drop",
        "Unreleased jacket",
        "Soon.",
        "Fleetfoot",
        "",
        "Jackets",
        "",
        "FALSE",
        "Title",
        "Default Title",
        "",
        "",
        "JKT-1",
        "5",
        "300.00",
        "",
        "",
        "draft",
    ],
]


def write_shopify(path: Path) -> None:
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SHOPIFY_HEADER)
        writer.writerows(SHOPIFY_ROWS)


def rows(path: Path, file_format: CatalogFormat | None = None, mapping: FieldMapping | None = None):
    source = ProductRows(path, file_format or detect_format(path), mapping)
    return list(source), source


def test_google_merchant_tsv(tmp_path: Path) -> None:
    path = tmp_path / "feed.tsv"
    path.write_text(MERCHANT_TSV)
    assert detect_format(path) is CatalogFormat.GOOGLE_MERCHANT
    (tent, lamp, bad), _ = rows(path)
    assert tent.fields["product_id"] == "TENT-2P" and tent.fields["price"] == 199.0
    assert tent.fields["description"] == "Light 3-season tent. 2.1 kg"
    assert tent.fields["category"] == "Sports > Camping > Tents" and tent.fields["in_stock"] is True
    attributes = tent.fields["attributes"]
    assert attributes["list_price"] == 249.0 and attributes["currency"] == "USD"
    assert attributes["gtin"] == "04012345678901" and attributes["color"] == "green"
    assert attributes["custom_label_0"] == "summer-sale" and attributes["link"] == "https://shop.example/tent"
    assert lamp.fields["price"] == 35.5 and lamp.fields["in_stock"] is False
    assert lamp.fields["description"] == "Bright & rechargeable"
    assert bad.fields["price"] == "cheap"  # left for validation, which reports it with its line


def test_google_merchant_rss_xml(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(MERCHANT_XML)
    assert detect_format(path) is CatalogFormat.GOOGLE_MERCHANT
    (kettle, mug), _ = rows(path)
    assert (
        kettle.fields["title"] == "Brewmaster kettle 1.7 L"
        and kettle.fields["description"] == "Boils in 3 minutes."
    )
    assert kettle.fields["category"] == "Home > Kitchen > Appliances" and kettle.fields["price"] == 45.0
    assert kettle.fields["attributes"]["currency"] == "GBP" and kettle.fields["in_stock"] is True
    assert mug.fields["title"] == "Stoneware mug" and mug.fields["in_stock"] is False


def test_an_xml_entity_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        "<rss><channel><item><g:id>&b;</g:id></item></channel></rss>"
    )
    with pytest.raises(Exception, match="(?i)entit"):
        rows(path)


def test_shopify_export_groups_variants_by_handle(tmp_path: Path) -> None:
    path = tmp_path / "products_export.csv"
    write_shopify(path)
    assert detect_format(path) is CatalogFormat.SHOPIFY
    (runner, hat, draft), _ = rows(path)
    assert runner.line == 2 and runner.fields["product_id"] == "trail-runner"
    assert runner.fields["description"] == "Grippy trail shoe." and runner.fields["brand"] == "Fleetfoot"
    assert runner.fields["category"] == "Apparel & Accessories > Shoes"
    assert runner.fields["price"] == 110.0 and runner.fields["in_stock"] is True
    attributes = runner.fields["attributes"]
    assert attributes["size"] == ["42", "43", "44"] and attributes["color"] == ["Red", "Blue"]
    assert attributes["price_range"] == "110.00-120.00" and attributes["tags"] == ["trail", "running"]
    assert attributes["type"] == "Running shoes" and attributes["image_link"] == "https://cdn.example/tr3.jpg"
    product = Product.model_validate(runner.fields)
    assert "size: 42, 43, 44" in compose_product_text(product)
    assert filterable_values(product.attributes["color"]) == ["red", "blue"]  # a filter on red matches
    assert hat.fields["in_stock"] is False and "size" not in hat.fields.get("attributes", {})
    assert hat.fields["category"] == "Hats"
    assert draft.line == 7 and draft.field == "Status" and "draft" in draft.reason


def test_a_mapping_renames_columns_and_reports_the_rest_once(tmp_path: Path) -> None:
    path = tmp_path / "saas.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {
                    "id": "notion",
                    "name": "Notion",
                    "Body (HTML)": "<p>Docs &amp; wikis</p>",
                    "vendor": "Notion Labs",
                    "seats": 10,
                    "colour": "black",
                    "price": 8,
                },
                {
                    "id": "figma",
                    "name": "Figma",
                    "Body (HTML)": "Design",
                    "vendor": "Figma",
                    "seats": 3,
                    "colour": "purple",
                    "price": 12,
                },
            ]
        )
    )
    mapping = FieldMapping.parse(
        ["name=title", "Body (HTML)=description", "vendor=brand", "seats=attributes.seats"]
    )
    (notion, figma), source = rows(path, CatalogFormat.JSONL, mapping)
    assert notion.fields == {
        "product_id": "notion",
        "title": "Notion",
        "description": "<p>Docs &amp; wikis</p>",
        "brand": "Notion Labs",
        "price": 8,
        "attributes": {"seats": 10},
    }
    assert source.left_out == {"colour"}


def test_a_bad_mapping_is_refused_with_the_reason() -> None:
    with pytest.raises(Exception, match="attributes.NAME"):
        FieldMapping.parse(["name=headline"])
    with pytest.raises(Exception, match="SOURCE=TARGET"):
        FieldMapping.parse(["no-equals-sign"])


def test_imports_of_every_shape_through_the_importer(tmp_path: Path, service: RecommenderService) -> None:
    shopify = tmp_path / "products_export.csv"
    write_shopify(shopify)
    merchant = tmp_path / "feed.tsv"
    merchant.write_text(MERCHANT_TSV)
    saas = tmp_path / "saas.csv"
    saas.write_text(
        "id,name,Body (HTML),extra\nnotion,Notion,<p>Docs <b>and</b> wikis</p>,1\nfigma,Figma,Design,2\n"
    )
    outcomes = {}
    for path, mapping in (
        (shopify, None),
        (merchant, None),
        (saas, FieldMapping.parse(["name=title", "Body (HTML)=description"])),
    ):
        file_format = detect_format(path)
        job = service.jobs.create(path.name, file_format.value, path=str(path))
        service.importer.run_job(job.job_id, path, file_format, mapping=mapping)
        outcomes[path.name] = service.jobs.get(job.job_id)
    assert (outcomes["products_export.csv"].succeeded, outcomes["products_export.csv"].failed) == (2, 1)
    assert (outcomes["feed.tsv"].succeeded, outcomes["feed.tsv"].failed) == (2, 1)
    assert outcomes["feed.tsv"].errors[0].line == 4 and outcomes["feed.tsv"].errors[0].field == "price"
    saas_job = outcomes["saas.csv"]
    assert saas_job.succeeded == 2 and saas_job.message.count("extra") == 1
    assert service.catalog.get("notion").description == "Docs and wikis"
    assert service.catalog.get("trail-runner").price == 110.0
    assert service.retriever.for_query("tent for camping", 1).items[0].product_id == "TENT-2P"


def test_html_is_stripped_wherever_a_description_enters() -> None:
    from recommender.models import Product

    product = Product(
        product_id="p", title="T", description="<div><p>Soft</p><script>x()</script> cotton</div>"
    )
    assert product.description == "Soft cotton"
    assert (
        Product(product_id="q", title="T", description="Salt & pepper < 5 g").description
        == "Salt & pepper < 5 g"
    )
