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


def test_a_long_text_is_cut_at_a_word() -> None:
    product = Product(product_id="p", title="Kettle", description="boils water quickly " * 50)
    full = compose_product_text(product)
    cut = compose_product_text(product, max_chars=40)
    assert cut == "Kettle. boils water quickly boils water" and full.startswith(cut)
    assert compose_product_text(product, max_chars=len(full)) == full
    assert compose_product_text(Product(product_id="p", title="x" * 60), max_chars=40) == "x" * 40


def test_text_hash_changes_with_text_and_model() -> None:
    base = text_hash("a", "model-1")
    assert base == text_hash("a", "model-1")
    assert base != text_hash("b", "model-1")
    assert base != text_hash("a", "model-2")
