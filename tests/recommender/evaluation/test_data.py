"""The evaluation's data in the shapes real data sets come in: other column names, times, rating scales,
item fields; bad rows left out and reported with their line, the rest read."""

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from recommender.errors import InvalidInputError
from recommender.evaluation.data import ColumnMapping, load_dataset, parse_price, parse_time
from recommender.evaluation.run import report_skipped
from recommender.evaluation.split import SplitOptions, TieOrder, leave_one_out
from recommender.models import MAX_ATTRIBUTE_VALUES, MAX_DESCRIPTION_CHARS

MOVIELENS_CSV = ColumnMapping(user="userId", item="movieId")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_movielens_latest_shape_half_star_ratings_and_pipe_genres(tmp_path: Path) -> None:
    ratings = write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,0.5,1260759179\n2,31,5.0,1260759185\n"
        "2,10,3.0,1260759186\n",
    )
    movies = write(
        tmp_path / "movies.csv",
        "movieId,title,genres\n31,Dangerous Minds (1995),Drama\n"
        '1029,"Dumbo (1941)",Animation|Children|Drama\n',
    )
    dataset = load_dataset(ratings, MOVIELENS_CSV, movies)
    assert [(i.user_id, i.item_id) for i in dataset.interactions] == [
        ("1", "31"),
        ("1", "1029"),
        ("2", "31"),
        ("2", "10"),
    ]
    # 0.5-5 stretched onto the service's 1-5: the lowest is 1, the highest 5, 2.5 below neutral.
    assert [round(i.rating, 3) for i in dataset.interactions] == [2.778, 1.0, 5.0, 3.222]
    product = dataset.items["1029"].product()
    assert product.title == "Dumbo (1941)" and product.category == "Animation"
    assert product.attributes["genres"] == "Animation, Children, Drama"
    assert dataset.skipped == []


def test_times_in_seconds_milliseconds_and_dates(tmp_path: Path) -> None:
    moment = datetime(2010, 12, 1, 8, 26, tzinfo=UTC).timestamp()
    for written in (
        "1291191960",
        "1291191960000",
        "2010-12-01T08:26:00Z",
        "2010-12-01 08:26:00",
        "12/1/2010 8:26",
    ):
        assert parse_time(written) == moment, written
    assert parse_time(1291191960000) == moment and parse_time("") == 0.0
    with pytest.raises(ValueError, match="neither a number nor a date"):
        parse_time("yesterday-ish")


def test_bad_rows_are_reported_with_their_line_and_the_good_rows_go_in(tmp_path: Path) -> None:
    events = write(
        tmp_path / "events.csv",
        "user_id,item_id,timestamp\n"
        "u1,p1,2024-01-02T10:00:00\n"  # line 2
        "u1,p2,last tuesday\n"  # line 3: no time
        ",p3,2024-01-02T10:05:00\n"  # line 4: no user
        "u2,p1\n"  # line 5: a column short
        "u2,..,2024-01-02T10:06:00\n"  # line 6: an id no URL reaches
        "u2,p3,1704190000\n",
    )
    dataset = load_dataset(events)
    assert [(i.user_id, i.item_id) for i in dataset.interactions] == [("u1", "p1"), ("u2", "p3")]
    assert all(i.rating is None for i in dataset.interactions)  # no rating column: purchases
    lines = [reason.split(":")[0] for reason in dataset.skipped]
    assert lines == [f"events.csv line {line}" for line in (3, 4, 5, 6)]
    assert "neither a number nor a date" in dataset.skipped[0] and "'user_id'" in dataset.skipped[1]
    assert "columns" in dataset.skipped[2] and "item_id" in dataset.skipped[3]

    console = Console(record=True, width=200)
    written = report_skipped(dataset, tmp_path / "out", console)
    assert written is not None and written.read_text().splitlines() == dataset.skipped
    assert "4 rows could not be read" in console.export_text()


def test_a_missing_column_names_the_columns_there_are_and_the_option(tmp_path: Path) -> None:
    ratings = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n")
    with pytest.raises(
        InvalidInputError, match=r"no column 'user_id' \(its columns: userId, movieId.*--user-column"
    ):
        load_dataset(ratings)
    with pytest.raises(InvalidInputError, match=r"no interaction could be read.*no 'item_id' value"):
        load_dataset(ratings, ColumnMapping(user="userId"))


def test_rating_columns_that_do_not_rate_are_purchases(tmp_path: Path) -> None:
    plays = write(tmp_path / "plays.csv", "user_id,item_id,rating\nu1,a,1\nu1,b,250\nu2,a,4000\n")
    assert all(i.rating is None for i in load_dataset(plays).interactions)
    constant = write(tmp_path / "implicit.csv", "user_id,item_id,rating\nu1,a,1\nu1,b,1\n")
    assert all(i.rating is None for i in load_dataset(constant).interactions)
    ten_point = write(tmp_path / "ten.csv", "user_id,item_id,rating\nu1,a,1\nu1,b,10\nu2,a,5.5\n")
    assert [i.rating for i in load_dataset(ten_point).interactions] == [1.0, 5.0, 3.0]
    five_point = write(tmp_path / "five.csv", "user_id,item_id,rating\nu1,a,1\nu1,b,4\n")
    assert [i.rating for i in load_dataset(five_point).interactions] == [1.0, 4.0]


def test_amazon_style_metadata_fills_the_catalog_fields(tmp_path: Path) -> None:
    reviews = write(
        tmp_path / "reviews.jsonl",
        json.dumps({"reviewerID": "A1", "asin": "B001", "overall": 5.0, "unixReviewTime": 1400000000})
        + "\n"
        + json.dumps({"reviewerID": "A1", "asin": "B002", "overall": 2.0, "unixReviewTime": 1400000100})
        + "\n",
    )
    long_text = "A serum. " * 4000
    meta = write(
        tmp_path / "meta.jsonl",
        json.dumps(
            {
                "asin": "B001",
                "title": "Vitamin C Serum",
                "description": ["<p>Brightens <b>skin</b>.</p>", "Daily use."],
                "brand": "Glow",
                "price": "$1,299.99",
                "categories": [["Beauty", "Skin Care", "Face"], ["Sale"]],
                "salesRank": {"Beauty": 120},
                "also_bought": ["B002", "B003"],
                "also_viewed": [f"B{number:03d}" for number in range(150)],
            }
        )
        + "\n"
        + json.dumps({"asin": "B002", "title": "Long one", "description": long_text, "price": "12,99 €"})
        + "\n",
    )
    mapping = ColumnMapping(user="reviewerID", item="asin", timestamp="unixReviewTime", rating="overall")
    dataset = load_dataset(reviews, mapping, meta)
    assert dataset.interactions[0].timestamp == 1400000000 and dataset.interactions[0].rating == 5.0
    product = dataset.items["B001"].product()
    assert product.brand == "Glow" and product.price == 1299.99
    assert product.category == "Beauty > Skin Care > Face"
    assert "Brightens skin." in product.description and "<b>" not in product.description
    assert product.attributes["also_bought"] == ["B002", "B003"]
    assert product.attributes["also_viewed"] == [f"B{number:03d}" for number in range(MAX_ATTRIBUTE_VALUES)]
    assert set(product.attributes) == {"also_bought", "also_viewed", "genres"}
    long_product = dataset.items["B002"].product()  # a description past the catalog's limit is cut, not lost
    assert (
        long_product.description == long_text[:MAX_DESCRIPTION_CHARS].strip() and long_product.price == 12.99
    )


def test_recbole_atomic_files_with_other_item_fields(tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    write(
        folder / "ml-1m.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t5\t978300760\n1\t20\t3\t978300761\n"
        "1\t30\n",
    )
    write(
        folder / "ml-1m.item",
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tgenre:token_seq\tsales_rank:float\n"
        "10\tToy Story\t1995\tAnimation Children's Comedy\t12\n",
    )
    dataset = load_dataset(folder)
    assert len(dataset.interactions) == 2 and dataset.skipped == [
        "ml-1m.inter line 4: 2 fields where the header has 4"
    ]
    product = dataset.items["10"].product()
    assert product.title == "Toy Story" and product.category == "Animation"
    assert product.attributes == {"sales_rank": 12.0, "year": 1995, "genres": "Animation, Children's, Comedy"}

    amazon = tmp_path / "amazon"
    amazon.mkdir()
    write(amazon / "Beauty.inter", "user_id:token\titem_id:token\ttimestamp:float\nA1\tB1\t1400000000\n")
    write(
        amazon / "Beauty.item",
        "item_id:token\ttitle:token\tcategories:token_seq\tprice:float\tbrand:token\n"
        "B1\tVitamin C Serum\tBeauty > Skin Care\t12.5\tGlow\n",
    )
    serum = load_dataset(amazon).items["B1"].product()
    assert (serum.category, serum.price, serum.brand) == ("Beauty > Skin Care", 12.5, "Glow")


def test_compressed_files_are_read(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "ratings.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,10,4,1260759145\n")
    with gzip.open(tmp_path / "movies.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"movieId": "31", "title": "Dangerous Minds"}) + "\n")
    dataset = load_dataset(tmp_path / "ratings.csv.gz", MOVIELENS_CSV, tmp_path / "movies.jsonl.gz")
    assert [i.item_id for i in dataset.interactions] == ["31", "10"]
    assert dataset.items["31"].product().title == "Dangerous Minds"


def test_parquet_interactions(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    table = pa.table(
        {"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"], "timestamp": [3000, 1000, 2000]}
    )
    pq.write_table(table, path)
    dataset = load_dataset(path)
    assert [(i.user_id, i.item_id, i.timestamp) for i in dataset.interactions] == [
        ("u1", "a", 3000.0),
        ("u1", "b", 1000.0),
        ("u2", "a", 2000.0),
    ]


def test_ties_by_item_id_sort_a_mixed_catalog(tmp_path: Path) -> None:
    events = write(
        tmp_path / "events.csv", "user_id,item_id,timestamp\nu1,B7,5\nu1,12,5\nu1,9,5\nu1,x,1\nu1,y,2\n"
    )
    split = leave_one_out(load_dataset(events), SplitOptions(tie_order=TieOrder.ITEM))
    user = split.user_ids.index("u1")
    ordered = [split.item_ids[item] for item in [*split.train[user], split.valid[user], split.test[user]]]
    assert ordered == ["x", "y", "9", "12", "B7"]


def test_prices_as_shops_write_them() -> None:
    assert parse_price(12) == 12.0 and parse_price("12.50") == 12.5 and parse_price("EUR 8") == 8.0
    assert parse_price("$1,299.99") == 1299.99 and parse_price("12,99 €") == 12.99
    assert parse_price("call us") is None and parse_price(-3) is None and parse_price(None) is None
