"""The evidence sentences said without an LLM, in English and Chinese (``language`` starting with zh)."""

from __future__ import annotations

from typing import Any

PHRASES: dict[str, dict[str, Any]] = {
    "en": {
        "similar": "it is similar to {title}, which you {verb}",
        "matches": "it matches your search ({terms})",
        "brand": "it is from {brand}, a brand you chose before",
        "category": "it is in {category}, like products you chose before",
        "popular": "{title} is popular with other shoppers.",
        "close": "{title} is close to what you were looking at.",
        "suggest": "We suggest {title} because {reasons}.",
        "and": " and ",
        "separator": ", ",
        "verbs": {
            "purchase": "bought",
            "add_to_cart": "added to your cart",
            "rating": "rated",
            "click": "looked at",
            "view": "viewed",
        },
        "nothing": "I found nothing {cheaper}that is close to {title} right now.",
        "cheaper_word": "cheaper ",
        "cheaper_options": "Cheaper options to {title}: {listed}.",
        "similar_options": "Similar options to {title}: {listed}.",
        "difference": "{title} is close to {other}, which you {verb}, with a similarity of {similarity:.2f}; "
        "see the product details for what differs.",
        "compared": "{title} compared with {other}: {facts}.",
        "no_differences": "the shop's data shows no difference in price, category, brand or attributes",
        "which_one": "Which product do you mean by '{name}': {options}?",
        "unknown_other": "I could not find a product called '{name}' in this shop.",
    },
    "zh": {
        "similar": "它与您{verb}的{title}相似",
        "matches": "它符合您的搜索（{terms}）",
        "brand": "它来自您选过的品牌{brand}",
        "category": "它属于{category}，与您选过的商品同类",
        "popular": "{title}深受其他顾客欢迎。",
        "close": "{title}与您正在看的商品相近。",
        "suggest": "我们推荐{title}，因为{reasons}。",
        "and": "，而且",
        "separator": "、",
        "verbs": {
            "purchase": "购买过",
            "add_to_cart": "加入购物车",
            "rating": "评价过",
            "click": "点击过",
            "view": "浏览过",
        },
        "nothing": "目前没有找到与{title}相近的{cheaper}商品。",
        "cheaper_word": "更便宜的",
        "cheaper_options": "比{title}更便宜的选择：{listed}。",
        "similar_options": "与{title}相似的选择：{listed}。",
        "difference": "{title}与您{verb}的{other}相近，相似度为{similarity:.2f}；具体区别请查看商品详情。",
        "compared": "{title}与{other}的比较：{facts}。",
        "no_differences": "商店数据中两者的价格、类别、品牌和属性没有区别",
        "which_one": "您说的“{name}”是指哪一个：{options}？",
        "unknown_other": "本店没有找到名为“{name}”的商品。",
    },
}


def phrases(language: str) -> dict[str, Any]:
    return PHRASES["zh"] if language.strip().lower().startswith("zh") else PHRASES["en"]
