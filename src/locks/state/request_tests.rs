//! The checks of `request.rs`, one named test per case: each malformed
//! target and the typed error it gets, and how a request naming one
//! resource twice is folded.

use super::*;
use crate::graph::FunctionId;
use crate::locks::resource::ModuleName;
use crate::locks::state::testing::{R, W, sem, target};

fn module(m: &str) -> Option<ModuleName> {
    Some(ModuleName::parse(m).unwrap())
}

macro_rules! invalid_cases {
    ($($name:ident: $targets:expr => $expect:pat,)*) => {$(
        #[test]
        fn $name() {
            let targets: Vec<LockTarget> = $targets;
            let got = normalise(&targets).map(|c| c.into_owned());
            assert!(matches!(got, Err($expect)), "{got:?}");
        }
    )*};
}

invalid_cases! {
    nothing_to_lock: vec![] => InvalidRequest::NoResources,
    function_without_its_module: vec![LockTarget {
        module: None,
        ..target("function:#1@m", W)
    }] => InvalidRequest::MissingModule { .. },
    module_beside_a_path: vec![LockTarget {
        module: module("m"),
        ..target("path:src/", W)
    }] => InvalidRequest::UnexpectedModule { .. },
    capacity_beside_a_named_resource: vec![LockTarget {
        capacity: Some(2),
        ..target("named:deploy", W)
    }] => InvalidRequest::UnexpectedCapacity { .. },
    permits_on_a_path: vec![LockTarget {
        claim: Claim::Permits(1),
        ..target("path:src/", W)
    }] => InvalidRequest::NotReadWrite { .. },
    write_on_a_semaphore: vec![LockTarget {
        claim: Claim::Write,
        ..sem("gpu", 1, Some(2))
    }] => InvalidRequest::NotPermits { .. },
    zero_permits: vec![sem("gpu", 0, Some(2))] => InvalidRequest::ZeroPermits { .. },
    zero_capacity: vec![sem("gpu", 1, Some(0))] => InvalidRequest::ZeroCapacity { .. },
    more_permits_than_the_given_capacity: vec![sem("gpu", 3, Some(2))] => InvalidRequest::PermitsOverCapacity { permits: 3, capacity: 2, .. },
    one_function_under_two_modules: vec![
        target("function:#1@a", W),
        target("function:#1@b", R),
    ] => InvalidRequest::TwoModules { .. },
    one_semaphore_with_two_capacities: vec![
        sem("gpu", 1, Some(2)),
        sem("gpu", 1, Some(3)),
    ] => InvalidRequest::TwoCapacities { first: 2, second: 3, .. },
    folded_permits_over_the_capacity: vec![
        sem("gpu", 3, None),
        sem("gpu", 1, Some(2)),
    ] => InvalidRequest::PermitsOverCapacity { .. },
}

#[test]
fn one_resource_named_twice_is_folded_into_the_stronger_claim() {
    let targets = vec![
        target("path:src/net", R),
        target("function:#2@m", R),
        target("path:src/net/", W),
        sem("gpu", 1, None),
        sem("gpu", 2, Some(4)),
    ];
    let got = normalise(&targets).unwrap();
    let shown: Vec<(String, Claim, Option<u32>)> = got
        .iter()
        .map(|t| (t.resource.to_string(), t.claim, t.capacity))
        .collect();
    assert_eq!(
        shown,
        [
            ("function:#2".into(), Claim::Read, None),
            ("path:src/net".into(), Claim::Write, None),
            ("semaphore:gpu".into(), Claim::Permits(2), Some(4)),
        ]
    );
}

#[test]
fn an_already_normal_request_is_used_as_it_is() {
    let targets = vec![target("function:#1@m", W), target("function:#2@m", R)];
    assert!(matches!(
        normalise(&targets),
        Ok(std::borrow::Cow::Borrowed(_))
    ));
    assert_eq!(targets[0].resource, Resource::Function(FunctionId(1)));
}
