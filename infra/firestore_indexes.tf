# The composite indexes firestore.tf creates, read from firestore.indexes.json
# (Firebase CLI format, also used by the emulator): an index is added there
# only. Kept apart and free of providers so that tests/infra evaluates it with
# `terraform console`.

locals {
  # Key: the collection group and its fields, e.g.
  # "image_jobs:owner_asc,created_at_desc" (a suffix "@group" for a
  # COLLECTION_GROUP scope), so a key stays put when other indexes come or go.
  firestore_indexes = {
    for index in jsondecode(file("${path.module}/firestore.indexes.json")).indexes :
    format("%s%s:%s",
      index.collectionGroup,
      index.queryScope == "COLLECTION" ? "" : "@group",
      join(",", [
        for f in index.fields :
        "${f.fieldPath}_${try({ ASCENDING = "asc", DESCENDING = "desc" }[f.order], lower(f.arrayConfig))}"
      ]),
    ) => index
  }
}
