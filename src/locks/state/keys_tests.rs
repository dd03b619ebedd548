//! The overlap rule of `keys.rs`, one named test per case: two claims,
//! each expanded into its key path, conflict exactly when some key they
//! share holds conflicting modes. Resources are written in their text form;
//! a function's module follows `@` (`function:#7@math`).

use super::*;
use crate::locks::resource::ResourceName;
use crate::locks::state::testing::{R, W, target};

/// Returns true if and only if the two claims meet on a key with
/// conflicting modes.
fn conflict(a: &LockTarget, b: &LockTarget) -> bool {
    parts(a).any(|(ka, ca)| parts(b).any(|(kb, cb)| ka == kb && ca.conflicts(cb)))
}

macro_rules! overlap_cases {
    ($($name:ident: ($a:expr, $am:expr) vs ($b:expr, $bm:expr) => $expect:expr,)*) => {$(
        #[test]
        fn $name() {
            let (a, b) = (target($a, $am), target($b, $bm));
            assert_eq!(conflict(&a, &b), $expect, "{a:?} vs {b:?}");
            assert_eq!(conflict(&b, &a), $expect, "not symmetric: {b:?} vs {a:?}");
        }
    )*};
}

overlap_cases! {
    directory_write_vs_file_below: ("path:src/", W) vs ("path:src/net/tcp.rs", R) => true,
    directory_read_vs_file_below_write: ("path:src/", R) vs ("path:src/net/tcp.rs", W) => true,
    directory_read_vs_file_below_read: ("path:src/", R) vs ("path:src/net/tcp.rs", R) => false,
    directory_vs_deep_descendant: ("path:src/", W) vs ("path:src/a/b/c/d/e.rs", R) => true,
    directory_vs_subdirectory: ("path:src/net/", R) vs ("path:src/", W) => true,
    file_vs_itself: ("path:src/net/tcp.rs", W) vs ("path:src/net/tcp.rs", R) => true,
    file_read_vs_itself_read: ("path:src/net/tcp.rs", R) vs ("path:src/net/tcp.rs", R) => false,
    file_and_directory_spellings_are_one_entry: ("path:src/net", W) vs ("path:src/net/", R) => true,
    file_spelling_covers_below: ("path:src/net", W) vs ("path:src/net/tcp.rs", R) => true,
    siblings_in_one_directory: ("path:src/a.rs", W) vs ("path:src/b.rs", W) => false,
    near_miss_file_prefix: ("path:lib/a", W) vs ("path:lib/ab", W) => false,
    near_miss_directory_prefix: ("path:lib/a/", W) vs ("path:lib/ab/x.rs", W) => false,
    near_miss_glob_like_names: ("path:lib/a*", W) vs ("path:lib/*b", W) => false,
    near_miss_top_level: ("path:src", W) vs ("path:srcx/y", W) => false,
    disjoint_trees: ("path:src/a/", W) vs ("path:lib/a/", W) => false,
    module_write_vs_its_function: ("module:math", W) vs ("function:#7@math", R) => true,
    module_read_vs_its_function_write: ("module:math", R) vs ("function:#7@math", W) => true,
    module_read_vs_its_function_read: ("module:math", R) vs ("function:#7@math", R) => false,
    module_vs_function_of_a_submodule: ("module:math", W) vs ("function:#7@math::linalg", R) => true,
    module_vs_its_submodule: ("module:math", R) vs ("module:math::linalg", W) => true,
    submodule_vs_function_of_the_parent: ("module:math::linalg", W) vs ("function:#7@math", W) => false,
    module_near_miss: ("module:math", W) vs ("module:mathx", W) => false,
    module_vs_function_of_a_near_miss: ("module:math", W) vs ("function:#7@mathx", W) => false,
    function_vs_itself_under_another_module: ("function:#7@math", W) vs ("function:#7@other", R) => true,
    functions_of_one_module: ("function:#7@math", W) vs ("function:#8@math", W) => false,
    function_read_vs_read: ("function:#7@math", R) vs ("function:#7@math", R) => false,
    named_vs_itself: ("named:deploy:staging", W) vs ("named:deploy:staging", R) => true,
    named_read_vs_read: ("named:deploy", R) vs ("named:deploy", R) => false,
    named_vs_another: ("named:deploy:staging", W) vs ("named:deploy:prod", W) => false,
    named_are_flat: ("named:deploy", W) vs ("named:deploy:staging", W) => false,
    named_slashes_are_not_paths: ("named:src", W) vs ("named:src/a", W) => false,
    kinds_never_meet_path_and_named: ("path:src", W) vs ("named:src", W) => false,
    kinds_never_meet_module_and_named: ("module:math", W) vs ("named:math", W) => false,
}

#[test]
fn semaphores_meet_only_their_own_name_and_count_rather_than_conflict() {
    let name = |n: &str| ResourceName::parse_semaphore(n).unwrap();
    let gpu = LockTarget::permits(name("gpu"), 2, Some(4));
    let gpu2 = LockTarget::permits(name("gpu"), 1, None);
    let other = LockTarget::permits(name("gpus"), 1, None);
    let (key, claim) = parts(&gpu).next().unwrap();
    assert_eq!(parts(&gpu).count(), 1, "a semaphore has no ancestors");
    assert!(key.is_semaphore());
    assert_eq!(claim, KeyClaim::Permits(2));
    assert!(parts(&gpu2).any(|(k, _)| k == key));
    assert!(!parts(&other).any(|(k, _)| k == key));
    assert!(!conflict(&gpu, &gpu2), "permits count; they are not modes");
}

#[test]
fn a_path_expands_into_its_ancestors_then_itself() {
    let t = target("path:src/net/tcp.rs", W);
    let keys: Vec<String> = parts(&t).map(|(k, _)| k.text().to_string()).collect();
    assert_eq!(keys, ["src", "src/net", "src/net/tcp.rs"]);
    let claims: Vec<KeyClaim> = parts(&t).map(|(_, c)| c).collect();
    let ix = KeyClaim::Modes(Modes::IX);
    assert_eq!(claims, [ix, ix, KeyClaim::Modes(Modes::X)]);
}

#[test]
fn a_function_expands_into_its_module_path_then_itself() {
    let t = target("function:#7@math::linalg", R);
    let keys: Vec<KeyRef<'_>> = parts(&t).map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[0].text(), "math");
    assert_eq!(keys[1].text(), "math::linalg");
    assert_eq!(keys[2], KeyRef::Function(FunctionId(7)));
    assert!(
        parts(&t)
            .take(2)
            .all(|(_, c)| c == KeyClaim::Modes(Modes::IS))
    );
}

#[test]
fn an_ancestor_key_shows_as_the_directory_it_is() {
    let t = target("path:src/net/tcp.rs", R);
    let first = parts(&t).next().unwrap().0;
    assert_eq!(first.resource().to_string(), "path:src/");
    let own = parts(&t).last().unwrap().0;
    assert_eq!(own.resource().to_string(), "path:src/net/tcp.rs");
}

/// The matrix, pair by pair: (row, column, conflicts).
#[test]
fn the_compatibility_matrix_is_the_standard_one() {
    let (is, ix, s, x) = (Modes::IS, Modes::IX, Modes::S, Modes::X);
    let table = [
        (is, is, false),
        (is, ix, false),
        (is, s, false),
        (is, x, true),
        (ix, ix, false),
        (ix, s, true),
        (ix, x, true),
        (s, s, false),
        (s, x, true),
        (x, x, true),
    ];
    for (a, b, expect) in table {
        assert_eq!(a.conflicts(b), expect, "{a:?} vs {b:?}");
        assert_eq!(b.conflicts(a), expect, "{b:?} vs {a:?}");
    }
    assert!(
        s.union(ix).conflicts(is.union(ix)),
        "a set conflicts if one pair does"
    );
    assert!(!Modes::NONE.conflicts(x));
}
