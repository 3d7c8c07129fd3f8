//! Registry behaviour that needs a real store.

use serde_json::json;

use super::admission::tests::NEXT_SUFFIXES;
use super::create::GENERATE_NAME_ATTEMPTS;
use super::*;

fn draw_next(suffixes: &[&str]) {
    NEXT_SUFFIXES.with(|q| {
        q.borrow_mut()
            .extend(suffixes.iter().map(|s| s.to_string()))
    });
}

// Current-thread runtime: the creates draw their suffixes on the test's thread.
#[tokio::test]
async fn a_taken_generated_name_is_drawn_again_up_to_eight_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = crate::test_registry::registry(dir.path()).await;
    let kind = resources::by_name("configmaps").expect("kind");
    let generated = || json!({"metadata": {"generateName": "web-"}});
    let create = || registry.create(kind, Some("default"), generated());

    draw_next(&["bbbbb", "bbbbb", "ccccc"]);
    let first = create().await.expect("first");
    let second = create().await.expect("second, after one collision");
    assert_eq!(
        (object::name(&first), object::name(&second)),
        (Some("web-bbbbb"), Some("web-ccccc"))
    );

    draw_next(&["bbbbb"; GENERATE_NAME_ATTEMPTS as usize]);
    draw_next(&["ddddd"]);
    let err = create().await.expect_err("eight collisions");
    assert!(matches!(err, ApiError::AlreadyExists { .. }), "{err:?}");
    // The ninth suffix was not drawn by that create.
    let next = create().await.expect("next");
    assert_eq!(object::name(&next), Some("web-ddddd"));
}
