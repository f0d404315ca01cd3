import pytest
from pydantic import ValidationError

from recommender.models import EventType, InteractionEvent, Product, ProductFilter


def test_category_is_normalised_and_every_prefix_is_filterable() -> None:
    product = Product(product_id="p", title="t", category=" Home /Kitchen >  Knives ")
    assert product.category == "Home > Kitchen > Knives"
    assert product.category_prefixes() == ["Home", "Home > Kitchen", "Home > Kitchen > Knives"]


def test_numeric_product_ids_become_strings() -> None:
    assert Product.model_validate({"product_id": 42, "title": "t"}).product_id == "42"


@pytest.mark.parametrize(
    "fields",
    [
        {"product_id": "p", "title": "   "},
        {"product_id": "p", "title": "t", "price": -1},
        {"product_id": "p", "title": "t", "colour": "red"},
        {"product_id": "p", "title": "t", "attributes": {"a.b": 1}},
    ],
)
def test_invalid_products_are_rejected(fields: dict) -> None:
    with pytest.raises(ValidationError):
        Product.model_validate(fields)


def test_rating_needs_a_value_in_range() -> None:
    with pytest.raises(ValidationError):
        InteractionEvent(user_id="u", product_id="p", type="rating")
    with pytest.raises(ValidationError):
        InteractionEvent(user_id="u", product_id="p", type="rating", value=7)
    event = InteractionEvent(user_id="u", product_id="p", type="rating", value=4)
    assert event.event_type is EventType.RATING
    assert event.timestamp.tzinfo is not None


def test_filter_rejects_inverted_price_range() -> None:
    with pytest.raises(ValidationError):
        ProductFilter(price_min=10, price_max=5)


def test_html_entities_in_titles_brands_and_categories_are_text() -> None:
    product = Product(
        product_id="p",
        title="Tom &amp; Jerry &#8211; DVD",
        brand="Ben &amp; Jerry&#39;s",
        category="Home &gt; Garden",
    )
    assert (product.title, product.brand, product.category) == (
        "Tom & Jerry \u2013 DVD",
        "Ben & Jerry's",
        "Home > Garden",
    )
    assert Product(product_id="q", title="AT&T phone").title == "AT&T phone"
    with pytest.raises(ValidationError):
        Product(product_id="r", title="&nbsp;")  # nothing left of the title but a space
