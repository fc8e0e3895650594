"""The store's one table.

An item per `(namespace, key)`. The namespace is kept as its labels joined by `.`
(labels cannot contain a dot), and the primary key leads with it, so a namespace and
everything under it is one contiguous index range: `("a", "b")` and its descendants are
`"a.b" <= namespace < "a.b/"` (`/` follows `.` in byte order). On PostgreSQL the column
compares in the "C" collation (see the migration), so that range and `ORDER BY` are
byte-ordered as they are on SQLite, whatever the database's default collation.

`DjangoStore` reads and writes it with raw SQL (`store.sql`); the model exists for
migrations, the admin and the console's store browser.
"""

from django.db import models


class StoreItem(models.Model):
    """One stored item.

    `embedding` holds the item's vectors for semantic search as little-endian float32
    bytes, one row of `dims` floats per embedded text (an item with `fields=["a[*]"]`
    gets one per array element); NULL when the item is not indexed. Both SQLite and
    PostgreSQL hold bytes, and NumPy reads them without a copy.
    """

    pk = models.CompositePrimaryKey("namespace", "key")
    namespace = models.TextField()
    key = models.TextField()
    value = models.JSONField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    ttl_minutes = models.FloatField(null=True, blank=True)
    embedding = models.BinaryField(null=True, blank=True)

    class Meta:
        db_table = "lg_store_item"
        indexes = [
            # The sweeper's range: only rows that can expire are in it.
            models.Index(
                fields=["expires_at"],
                name="lg_store_item_expires",
                condition=models.Q(expires_at__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.namespace}/{self.key}"

    @property
    def namespace_tuple(self) -> tuple[str, ...]:
        return tuple(self.namespace.split(".")) if self.namespace else ()
