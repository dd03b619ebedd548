//! The parsers of `resource.rs`, one named test per case (a table of
//! inputs and what each must give), so the first failing case does not
//! hide the rest.

use super::*;

/// `name: input => Ok(text as kept)` or `=> Err(pattern)`.
macro_rules! path_cases {
    ($($name:ident: $input:expr => $expect:pat,)*) => {$(
        #[test]
        fn $name() {
            let got = ResourcePath::parse($input);
            assert!(matches!(got.as_ref().map(ResourcePath::as_str), $expect), "{}: {got:?}", $input);
        }
    )*};
}

path_cases! {
    path_file: "src/net/tcp.rs" => Ok("src/net/tcp.rs"),
    path_directory_keeps_its_slash: "src/net/" => Ok("src/net/"),
    path_one_segment: "README.md" => Ok("README.md"),
    path_dotfile_is_a_name: ".github/workflows/ci.yml" => Ok(".github/workflows/ci.yml"),
    path_dots_inside_a_name: "a..b/c.d" => Ok("a..b/c.d"),
    path_spaces_and_unicode: "docs/ünïcode name.md" => Ok("docs/ünïcode name.md"),
    path_empty: "" => Err(ResourceError::Empty { kind: ResourceKind::Path }),
    path_root_alone: "/" => Err(ResourceError::AbsolutePath { .. }),
    path_absolute: "/etc/passwd" => Err(ResourceError::AbsolutePath { .. }),
    path_backslash: "src\\net" => Err(ResourceError::Backslash { .. }),
    path_double_slash: "src//net" => Err(ResourceError::EmptySegment { .. }),
    path_two_trailing_slashes: "src/net//" => Err(ResourceError::EmptySegment { .. }),
    path_dot_first: "./src" => Err(ResourceError::DotSegment { .. }),
    path_dot_inside: "src/./net" => Err(ResourceError::DotSegment { .. }),
    path_dot_alone: "." => Err(ResourceError::DotSegment { .. }),
    path_dot_directory: "./" => Err(ResourceError::DotSegment { .. }),
    path_dotdot_first: "../outside" => Err(ResourceError::DotDotSegment { .. }),
    path_dotdot_inside: "src/../../etc" => Err(ResourceError::DotDotSegment { .. }),
    path_dotdot_last: "src/.." => Err(ResourceError::DotDotSegment { .. }),
    path_control_character: "src/\u{0}x" => Err(ResourceError::ControlCharacter { .. }),
    path_newline: "src/a\nb" => Err(ResourceError::ControlCharacter { .. }),
    path_too_long: &"a".repeat(MAX_NAME_BYTES + 1) => Err(ResourceError::TooLong { .. }),
    path_too_deep: &"a/".repeat(MAX_DEPTH + 1) => Err(ResourceError::TooDeep { .. }),
}

#[test]
fn path_at_the_depth_limit() {
    let deep = "a/".repeat(MAX_DEPTH);
    assert_eq!(ResourcePath::parse(&deep).unwrap().as_str(), deep);
}

#[test]
fn path_file_and_directory_spellings_are_one_entry() {
    let dir = ResourcePath::parse("src/net/").unwrap();
    let file = ResourcePath::parse("src/net").unwrap();
    assert_eq!(dir, file);
    assert_eq!(dir.entry(), "src/net");
    assert!(dir.is_dir() && !file.is_dir());
    let hash = |p: &ResourcePath| {
        let mut h = std::hash::DefaultHasher::new();
        p.hash(&mut h);
        h.finish()
    };
    assert_eq!(hash(&dir), hash(&file));
}

#[test]
fn path_near_misses_are_different_entries() {
    let a = ResourcePath::parse("lib/a").unwrap();
    let ab = ResourcePath::parse("lib/ab").unwrap();
    assert_ne!(a, ab);
}

#[test]
fn path_errors_name_the_path_and_the_fix() {
    let e = ResourcePath::parse("src/../etc").unwrap_err().to_string();
    assert_eq!(
        e,
        "path `src/../etc` has a `..` segment; paths stay inside the repository"
    );
    let e = ResourcePath::parse("/abs").unwrap_err().to_string();
    assert_eq!(
        e,
        "path `/abs` is absolute; give it relative to the repository root"
    );
}

macro_rules! module_cases {
    ($($name:ident: $input:expr => $expect:pat,)*) => {$(
        #[test]
        fn $name() {
            let got = ModuleName::parse($input);
            assert!(matches!(got.as_ref().map(ModuleName::as_str), $expect), "{}: {got:?}", $input);
        }
    )*};
}

module_cases! {
    module_plain: "math" => Ok("math"),
    module_nested: "math::linalg" => Ok("math::linalg"),
    module_underscore: "_private::x1" => Ok("_private::x1"),
    module_empty: "" => Err(ResourceError::Empty { kind: ResourceKind::Module }),
    module_empty_segment: "math::" => Err(ResourceError::BadModule { .. }),
    module_leading_separator: "::math" => Err(ResourceError::BadModule { .. }),
    module_single_colon: "math:linalg" => Err(ResourceError::BadModule { .. }),
    module_digit_first: "1math" => Err(ResourceError::BadModule { .. }),
    module_dash: "my-mod" => Err(ResourceError::BadModule { .. }),
}

#[test]
fn module_of_a_qualified_name_is_everything_before_the_last_separator() {
    let f = QualifiedName::new("math::linalg::dot").unwrap();
    assert_eq!(ModuleName::of(&f).as_str(), "math::linalg");
}

macro_rules! name_cases {
    ($($name:ident: $input:expr => $expect:pat,)*) => {$(
        #[test]
        fn $name() {
            let got = ResourceName::parse($input);
            assert!(matches!(got.as_ref().map(ResourceName::as_str), $expect), "{}: {got:?}", $input);
        }
    )*};
}

name_cases! {
    name_with_colons: "deploy:staging" => Ok("deploy:staging"),
    name_with_slashes_is_flat: "a/b" => Ok("a/b"),
    name_empty: "" => Err(ResourceError::Empty { .. }),
    name_control_character: "gpu\t0" => Err(ResourceError::ControlCharacter { .. }),
    name_too_long: &"n".repeat(MAX_NAME_BYTES + 1) => Err(ResourceError::TooLong { .. }),
}

macro_rules! text_form_cases {
    ($($name:ident: $input:expr => $expect:expr,)*) => {$(
        #[test]
        fn $name() {
            let got = Resource::parse($input).map(|r| r.to_string());
            assert_eq!(got.as_deref().map_err(|e| e.to_string()), $expect.map_err(|e: &str| e.to_string()), "{}", $input);
        }
    )*};
}

text_form_cases! {
    text_function: "function:#7" => Ok::<_, &str>("function:#7"),
    text_module: "module:math::linalg" => Ok("module:math::linalg"),
    text_path_directory: "path:src/net/" => Ok("path:src/net/"),
    text_named_keeps_its_colons: "named:deploy:staging" => Ok("named:deploy:staging"),
    text_semaphore: "semaphore:gpu" => Ok("semaphore:gpu"),
    text_no_kind: "src/net" => Err("`src/net` names no resource: expected `function:#7`, `module:math`, `path:src/net/`, `named:deploy` or `semaphore:gpu`"),
    text_unknown_kind: "file:src" => Err("`file:src` names no resource: expected `function:#7`, `module:math`, `path:src/net/`, `named:deploy` or `semaphore:gpu`"),
    text_function_without_hash: "function:7" => Err("`7` is not a function: expected `#` and its id, as in `function:#7`"),
    text_bad_path: "path:../x" => Err("path `../x` has a `..` segment; paths stay inside the repository"),
    text_empty_semaphore: "semaphore:" => Err("a semaphore name cannot be empty"),
    text_empty_path: "path:" => Err("a path cannot be empty"),
}

#[test]
fn resources_sort_by_kind_then_name() {
    let mut rs: Vec<Resource> = [
        "semaphore:a",
        "path:b",
        "function:#2",
        "module:z",
        "named:a",
    ]
    .iter()
    .map(|t| Resource::parse(t).unwrap())
    .collect();
    rs.sort();
    let kinds: Vec<ResourceKind> = rs.iter().map(Resource::kind).collect();
    assert_eq!(kinds, ResourceKind::ALL);
}
