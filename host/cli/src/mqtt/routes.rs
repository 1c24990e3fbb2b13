//! The gateway config's routes: an MQTT topic filter → a plugin, and where
//! its results go.
//!
//! ```toml
//! [[route]]
//! topic = "sensors/+/audio"   # MQTT filter
//! plugin = "kws"
//! result = "results/{1}/kws"  # {1} is the level the first + matched
//! stream = 1                  # optional: the wildcard that names a device's stream
//! queue = 64                  # optional: messages waiting, the oldest dropped beyond
//! ```
//!
//! Beside the routes, `threads = N` (top level) is how many threads one
//! inference may split its big layers over, as `--threads` (which wins).

use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Deserialize;

/// `--config gateway.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    #[serde(default)]
    pub route: Vec<RouteConfig>,
    /// Threads per inference (`--threads` overrides it).
    pub threads: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub topic: String,
    pub plugin: String,
    pub result: String,
    pub stream: Option<usize>,
    pub queue: Option<usize>,
}

/// Messages a route holds waiting, by default.
pub const DEFAULT_QUEUE: usize = 64;

/// A route, checked.
#[derive(Clone, Debug)]
pub struct Route {
    pub filter: Filter,
    pub plugin: String,
    pub result: Template,
    /// The wildcard (1-based, as in `{1}`) whose match names the stream.
    pub stream: Option<usize>,
    pub queue: usize,
}

impl GatewayConfig {
    pub fn load(path: &Path) -> anyhow::Result<GatewayConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn routes(&self) -> anyhow::Result<Vec<Route>> {
        self.route
            .iter()
            .enumerate()
            .map(|(i, r)| Route::new(r).with_context(|| format!("route {} ({:?})", i + 1, r.topic)))
            .collect()
    }
}

impl Route {
    fn new(r: &RouteConfig) -> anyhow::Result<Route> {
        let filter = Filter::parse(&r.topic)?;
        let result = Template::parse(&r.result)?;
        let wildcards = filter.wildcards();
        if let Some(n) = result.highest()
            && n > wildcards
        {
            bail!(
                "result {:?} uses {{{n}}} but the filter has {wildcards} wildcard(s)",
                r.result
            );
        }
        if let Some(s) = r.stream
            && (s == 0 || s > wildcards)
        {
            bail!("stream = {s}: the filter has wildcards 1 to {wildcards}");
        }
        if r.plugin.is_empty() {
            bail!("no plugin named");
        }
        let queue = r.queue.unwrap_or(DEFAULT_QUEUE);
        if queue == 0 {
            bail!("queue = 0 would drop every message");
        }
        Ok(Route {
            filter,
            plugin: r.plugin.clone(),
            result,
            stream: r.stream,
            queue,
        })
    }
}

/// An MQTT topic filter, levels split on `/`, with `+` and a final `#`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    text: String,
    levels: Vec<String>,
}

impl Filter {
    pub fn parse(text: &str) -> anyhow::Result<Filter> {
        if text.is_empty() {
            bail!("an empty topic filter");
        }
        let levels: Vec<String> = text.split('/').map(str::to_string).collect();
        for (i, l) in levels.iter().enumerate() {
            let wild = l == "+" || l == "#";
            if !wild && (l.contains('+') || l.contains('#')) {
                bail!("{text:?}: a wildcard must fill its whole level");
            }
            if l == "#" && i + 1 != levels.len() {
                bail!("{text:?}: # must be the last level");
            }
        }
        Ok(Filter {
            text: text.to_string(),
            levels,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn wildcards(&self) -> usize {
        self.levels
            .iter()
            .filter(|l| *l == "+" || *l == "#")
            .count()
    }

    /// What each wildcard matched in `topic`, or `None` if it does not match.
    /// A `#` matches the rest of the topic, levels joined with `/`. As MQTT
    /// says, wildcards at the first level do not match topics starting `$`.
    pub fn matches(&self, topic: &str) -> Option<Vec<String>> {
        let levels: Vec<&str> = topic.split('/').collect();
        if topic.starts_with('$') && matches!(self.levels[0].as_str(), "+" | "#") {
            return None;
        }
        let mut got = Vec::new();
        for (i, f) in self.levels.iter().enumerate() {
            match f.as_str() {
                "#" => {
                    got.push(levels.get(i..).map(|r| r.join("/")).unwrap_or_default());
                    return Some(got);
                }
                "+" => got.push(levels.get(i)?.to_string()),
                exact => {
                    if levels.get(i) != Some(&exact) {
                        return None;
                    }
                }
            }
        }
        (levels.len() == self.levels.len()).then_some(got)
    }
}

/// A result topic with `{N}` standing for what wildcard N matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Level(usize),
}

impl Template {
    pub fn parse(text: &str) -> anyhow::Result<Template> {
        if text.is_empty() || text.contains('+') || text.contains('#') {
            bail!("{text:?} is not a topic to publish to");
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .with_context(|| format!("{text:?}: a {{ without }}"))?;
            let n: usize = rest[open + 1..open + close]
                .parse()
                .ok()
                .filter(|&n| n >= 1)
                .with_context(|| format!("{text:?}: {{...}} must hold a wildcard number from 1"))?;
            parts.push(Part::Level(n));
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            bail!("{text:?}: a }} without {{");
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    fn highest(&self) -> Option<usize> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Level(n) => Some(*n),
                Part::Text(_) => None,
            })
            .max()
    }

    /// The topic for a message whose wildcards matched `levels`.
    pub fn render(&self, levels: &[String]) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Level(n) => levels.get(n - 1).map_or("", String::as_str),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_mqtt_says() {
        let f = Filter::parse("sensors/+/audio").unwrap();
        assert_eq!(f.matches("sensors/dev1/audio"), Some(vec!["dev1".into()]));
        assert_eq!(f.matches("sensors/dev1/video"), None);
        assert_eq!(f.matches("sensors/dev1/audio/x"), None);
        assert_eq!(f.matches("sensors/audio"), None);
        let h = Filter::parse("plant/#").unwrap();
        assert_eq!(h.matches("plant/a/b/c"), Some(vec!["a/b/c".into()]));
        assert_eq!(h.matches("plant"), Some(vec!["".into()]));
        assert_eq!(Filter::parse("#").unwrap().matches("$SYS/x"), None);
        assert!(Filter::parse("a/#/b").is_err());
        assert!(Filter::parse("a/b+").is_err());
    }

    #[test]
    fn results_reuse_the_matched_levels() {
        let t = Template::parse("results/{1}/kws/{2}").unwrap();
        assert_eq!(
            t.render(&["dev1".into(), "left".into()]),
            "results/dev1/kws/left"
        );
        assert!(Template::parse("results/{0}").is_err());
        assert!(Template::parse("results/{x}").is_err());
        assert!(Template::parse("results/{1").is_err());
        assert!(Template::parse("results/+").is_err());
    }

    #[test]
    fn threads_are_a_top_level_setting() {
        let cfg: GatewayConfig = toml::from_str("threads = 4\n").unwrap();
        assert_eq!(cfg.threads, Some(4));
        assert!(cfg.route.is_empty());
        assert_eq!(toml::from_str::<GatewayConfig>("").unwrap().threads, None);
        assert!(toml::from_str::<GatewayConfig>("threads = -1").is_err());
    }

    #[test]
    fn a_route_must_name_wildcards_it_has() {
        let cfg: GatewayConfig = toml::from_str(
            r#"
            [[route]]
            topic = "sensors/+/audio"
            plugin = "kws"
            result = "results/{2}/kws"
            "#,
        )
        .unwrap();
        let e = format!("{:#}", cfg.routes().unwrap_err());
        assert!(e.contains("uses {2} but the filter has 1 wildcard"), "{e}");
        let cfg: GatewayConfig = toml::from_str(
            r#"
            [[route]]
            topic = "sensors/+/audio"
            plugin = "kws"
            result = "results/{1}/kws"
            stream = 1
            "#,
        )
        .unwrap();
        let r = &cfg.routes().unwrap()[0];
        assert_eq!(r.stream, Some(1));
        assert_eq!(r.queue, DEFAULT_QUEUE);
        assert!(
            toml::from_str::<GatewayConfig>("[[route]]\ntopic='a'\nplugin='p'\nresult='r'\nqeue=1")
                .is_err(),
            "a misspelt key is refused"
        );
    }
}
