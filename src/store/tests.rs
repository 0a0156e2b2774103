use super::{testing, *};

async fn migrations_are_idempotent(store: Store) {
    assert!(store.list_runs(None).await.unwrap().is_empty());
}

crate::both_backends!(migrations_are_idempotent);
