//! Bad configuration fails at start, naming the variable.

use omni_platform::config::Env;

#[test]
fn malformed_port_and_url_name_their_variables() {
    let env = Env::from_pairs([
        ("LISTEN_ADDR", "0.0.0.0:notaport"),
        ("AMQP_URL", "amqp://guest:guest@rabbit:56x2/%2f"),
    ]);
    let err = env
        .socket_addr_or("LISTEN_ADDR", "0.0.0.0:50051")
        .unwrap_err();
    assert!(err.to_string().contains("LISTEN_ADDR"), "{err}");
    let err = env.url_opt("AMQP_URL", &["amqp", "amqps"]).unwrap_err();
    assert!(err.to_string().contains("AMQP_URL"), "{err}");
    assert!(!err.to_string().contains("guest:guest"), "{err}");
}
