//! A policy set that does not load says where, in `file:line:col: message` form.

use std::path::Path;

use warden_policy::{PolicyEngine, PolicyError, PolicyErrors};

fn load(files: &[(&str, &str)]) -> PolicyErrors {
    let files: Vec<(String, String)> = files
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    match PolicyEngine::from_sources(&files) {
        Ok(engine) => panic!("loaded {} policies, expected errors", engine.len()),
        Err(errors) => errors,
    }
}

/// The single error of a one-file set, as (line, column, message).
fn only(text: &str) -> (usize, usize, String) {
    let errors = load(&[("policies/p.cedar", text)]);
    assert_eq!(errors.len(), 1, "{errors}");
    let PolicyError {
        file,
        line,
        column,
        message,
    } = errors.0.into_iter().next().unwrap();
    assert_eq!(file, "policies/p.cedar");
    (line, column, message)
}

const OK: &str = "permit (principal, action == Action::\"list_tools\", resource);\n";

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let (line, column, message) = only(&format!(
        "{OK}\npermit (principal, action, resource)\nwhen {{ principal == }};\n"
    ));
    assert_eq!((line, column), (4, 21), "{message}");
    assert!(message.contains("unexpected token"), "{message}");
}

#[test]
fn an_unknown_attribute_names_its_line() {
    let text = format!(
        "{OK}\n\n// people in sales\npermit (principal, action == Action::\"call_tool\", resource)\n  when {{ principal.department == \"sales\" }};\n"
    );
    let (line, column, message) = only(&text);
    assert_eq!((line, column), (6, 10), "{message}");
    assert!(message.contains("department"), "{message}");
}

#[test]
fn an_unknown_entity_type_names_its_line() {
    let (line, _, message) = only(&format!(
        "{OK}permit (principal, action, resource == Widget::\"x\");\n"
    ));
    assert_eq!(line, 2, "{message}");
    assert!(message.contains("Widget"), "{message}");
}

#[test]
fn an_unknown_action_is_an_error() {
    let (line, _, message) =
        only("permit (principal, action == Action::\"delete_everything\", resource);");
    assert_eq!(line, 1);
    assert!(message.contains("delete_everything"), "{message}");
}

#[test]
fn an_argument_read_without_has_is_an_error() {
    let (line, _, message) = only(
        "permit (principal, action == Action::\"call_tool\", resource)\nwhen { context.arguments.amount < 10 };",
    );
    assert_eq!(line, 2, "{message}");
    assert!(message.contains("amount"), "{message}");
}

#[test]
fn an_action_on_the_wrong_resource_type_is_an_error() {
    let (line, _, message) =
        only("permit (principal, action == Action::\"call_tool\", resource == Server::\"git\");");
    assert_eq!(line, 1, "{message}");
}

#[test]
fn consent_annotations_are_checked() {
    let (_, _, message) = only("@consent(\"sometimes\")\npermit (principal, action, resource);");
    assert!(message.contains("@consent must be"), "{message}");
    let (_, _, message) = only("@consent\npermit (principal, action, resource);");
    assert!(message.contains("@consent must be"), "{message}");
    let (_, _, message) = only("@consent(\"once\")\nforbid (principal, action, resource);");
    assert!(message.contains("permit"), "{message}");
    let (_, _, message) = only("@approvers(\"finance\")\npermit (principal, action, resource);");
    assert!(
        message.contains("@approvers belongs on a permit with @consent"),
        "{message}"
    );
    let (_, _, message) =
        only("@consent(\"once\")\n@approvers(\" \")\npermit (principal, action, resource);");
    assert!(
        message.contains("@approvers must name a group"),
        "{message}"
    );
}

#[test]
fn ids_are_unique_and_non_empty() {
    let errors = load(&[
        (
            "a.cedar",
            "@id(\"x\")\npermit (principal, action, resource);",
        ),
        (
            "b.cedar",
            "\n@id(\"x\")\npermit (principal, action, resource);",
        ),
    ]);
    assert_eq!(
        errors.to_string(),
        "b.cedar:2:1: policy id \"x\" is already used at a.cedar:1"
    );
    let (_, _, message) = only("@id(\" \")\npermit (principal, action, resource);");
    assert!(message.contains("@id"), "{message}");
}

#[test]
fn malformed_extension_literals_are_errors() {
    let (line, column, message) = only(
        "permit (principal, action, resource)\nwhen { context has client_ip && context.client_ip.isInRange(ip(\"10.0.0.0/33\")) };",
    );
    assert_eq!((line, column), (2, 64), "{message}");
    let (_, _, message) = only(
        "permit (principal, action == Action::\"call_tool\", resource)\nwhen { context.decimal_arguments has a && context.decimal_arguments.a.lessThan(decimal(\"1000\")) };",
    );
    assert!(message.contains("\"1000.0\""), "{message}");
}

#[test]
fn templates_are_not_policies() {
    let (_, _, message) = only("permit (principal == ?principal, action, resource);");
    assert!(
        message.contains("template") || message.contains("slot"),
        "{message}"
    );
}

#[test]
fn every_error_of_every_file_is_reported() {
    let errors = load(&[
        (
            "a.cedar",
            "permit (principal, action, resource) when { principal.x };",
        ),
        ("b.cedar", &format!("{OK}{OK}permit (principal,;")),
    ]);
    let text = errors.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines.iter().any(|l| l.starts_with("a.cedar:1:")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("b.cedar:3:")), "{text}");
}

#[test]
fn a_missing_directory_is_an_error() {
    let errors = PolicyEngine::load_dir(Path::new("/nonexistent/warden-policies")).unwrap_err();
    assert_eq!(errors.0[0].file, "/nonexistent/warden-policies");
    assert!(
        errors
            .to_string()
            .starts_with("/nonexistent/warden-policies: cannot read")
    );
}
