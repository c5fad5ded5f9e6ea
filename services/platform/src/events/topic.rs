//! AMQP topic matching for the in-process bus, with RabbitMQ's semantics: words are separated
//! by dots, `*` matches exactly one word, `#` matches zero or more.

pub(crate) fn matches(pattern: &str, key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = key.split('.').collect();
    matches_words(&pattern, &key)
}

fn matches_words(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| matches_words(rest, &key[skip..])),
        Some((&word, rest)) => match key.split_first() {
            Some((first, key_rest)) => {
                (word == "*" || word == *first) && matches_words(rest, key_rest)
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn follows_rabbitmq_topic_semantics() {
        let cases = [
            ("order.#", "order.placed", true),
            ("order.#", "order.allocation.fulfilled", true),
            ("order.#", "order", true),
            ("order.#", "orders.placed", false),
            ("order.*", "order.placed", true),
            ("order.*", "order.allocation.fulfilled", false),
            ("fulfilment.requested.#", "fulfilment.requested.wh-1", true),
            (
                "fulfilment.requested.wh-1",
                "fulfilment.requested.wh-2",
                false,
            ),
            ("*.stock.*", "inventory.stock.changed", true),
            ("*.stock.*", "warehouse.stock.received", true),
            ("#", "anything.at.all", true),
            ("#.changed", "inventory.stock.changed", true),
            ("#.changed", "inventory.stock.shortage", false),
            ("a.#.z", "a.z", true),
            ("a.#.z", "a.b.c.z", true),
            ("order.placed", "order.placed", true),
            ("order.placed", "order.placed.x", false),
        ];
        for (pattern, key, expected) in cases {
            assert_eq!(matches(pattern, key), expected, "{pattern} vs {key}");
        }
    }
}
