from recommender.models import Product
from recommender.text import compose_product_text, text_hash


def test_composed_text_orders_title_brand_category_attributes_description() -> None:
    product = Product(
        product_id="p1",
        title="Trail shoe",
        brand="Stridex",
        category="Sports/Running",
        attributes={"colour": "blue", "drop_mm": 6},
        description="Grippy sole.",
    )
    assert compose_product_text(product) == (
        "Trail shoe. Brand: Stridex. Category: Sports > Running. colour: blue; drop_mm: 6. Grippy sole."
    )


def test_title_alone_is_enough() -> None:
    assert compose_product_text(Product(product_id="p", title="Kettle")) == "Kettle."


def test_text_hash_changes_with_text_and_model() -> None:
    base = text_hash("a", "model-1")
    assert base == text_hash("a", "model-1")
    assert base != text_hash("b", "model-1")
    assert base != text_hash("a", "model-2")
