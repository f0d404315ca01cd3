"""The online loop: served lists with ids, attribution of shoppers' actions to them, merchandising rules,
and A/B experiments between pipeline configurations."""
