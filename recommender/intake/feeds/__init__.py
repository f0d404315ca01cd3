"""Catalog feeds in the shapes shops export: field mappings, Google Merchant Center, Shopify."""
