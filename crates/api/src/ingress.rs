//! The IngressClass every cluster has, and which Ingresses its controller (the agents' node
//! proxy) serves: those naming the class, and those naming none while it is the default.

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

/// The IngressClass the server creates at start.
pub const SKIFF_CLASS: &str = "skiff";
/// The controller of [`SKIFF_CLASS`]: the agents' node proxy.
pub const SKIFF_CONTROLLER: &str = "skiff.dev/ingress";
/// Annotation (`"true"`) marking the class Ingresses without a class belong to.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The class annotation older Ingresses use instead of `spec.ingressClassName`.
const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

fn controller(class: &IngressClass) -> Option<&str> {
    class.spec.as_ref()?.controller.as_deref()
}

fn is_default(class: &IngressClass) -> bool {
    class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// The class an Ingress names (`spec.ingressClassName`, else the legacy annotation).
pub fn class_name(ingress: &Ingress) -> Option<&str> {
    ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .or_else(|| {
            ingress
                .metadata
                .annotations
                .as_ref()?
                .get(LEGACY_CLASS_ANNOTATION)
                .map(String::as_str)
        })
        .filter(|name| !name.is_empty())
}

/// Whether `controller_name`'s controller serves `ingress`, given the cluster's classes: the
/// class it names is one of that controller's, or it names none and a default class is.
pub fn is_served_by<'a>(
    ingress: &Ingress,
    classes: impl IntoIterator<Item = &'a IngressClass>,
    controller_name: &str,
) -> bool {
    let mut classes = classes.into_iter();
    match class_name(ingress) {
        Some(name) => classes.any(|c| {
            c.metadata.name.as_deref() == Some(name) && controller(c) == Some(controller_name)
        }),
        None => classes.any(|c| is_default(c) && controller(c) == Some(controller_name)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn class(name: &str, controller: &str, default: bool) -> IngressClass {
        let annotations = if default {
            json!({DEFAULT_CLASS_ANNOTATION: "true"})
        } else {
            json!({})
        };
        serde_json::from_value(
            json!({"metadata": {"name": name, "annotations": annotations},
            "spec": {"controller": controller}}),
        )
        .unwrap()
    }

    fn ingress(spec_class: Option<&str>, annotation: Option<&str>) -> Ingress {
        let mut value = json!({"metadata": {"name": "web"}, "spec": {}});
        if let Some(name) = spec_class {
            value["spec"]["ingressClassName"] = json!(name);
        }
        if let Some(name) = annotation {
            value["metadata"]["annotations"] = json!({LEGACY_CLASS_ANNOTATION: name});
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn named_classes_and_the_default_one() {
        let skiff = class(SKIFF_CLASS, SKIFF_CONTROLLER, true);
        let nginx = class("nginx", "k8s.io/ingress-nginx", false);
        let both = [&skiff, &nginx];
        assert!(is_served_by(
            &ingress(Some("skiff"), None),
            both,
            SKIFF_CONTROLLER
        ));
        assert!(!is_served_by(
            &ingress(Some("nginx"), None),
            both,
            SKIFF_CONTROLLER
        ));
        assert!(is_served_by(
            &ingress(None, Some("skiff")),
            both,
            SKIFF_CONTROLLER
        ));
        assert!(is_served_by(&ingress(None, None), both, SKIFF_CONTROLLER));
        assert!(
            !is_served_by(&ingress(Some("gone"), None), both, SKIFF_CONTROLLER),
            "a class that does not exist is no one's"
        );
        let not_default = class(SKIFF_CLASS, SKIFF_CONTROLLER, false);
        assert!(!is_served_by(
            &ingress(None, None),
            [&not_default],
            SKIFF_CONTROLLER
        ));
    }
}
