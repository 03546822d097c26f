//! Where the crates the expansion names are, in the package being compiled.
//!
//! The attribute is one macro reached by several paths: `backstop::retry`,
//! `backstop_http::backstop::retry`, `backstop_aws::backstop::retry`, or a
//! `use backstop_http::backstop;` and then `#[backstop::retry]`. A macro
//! cannot see the path it was called by, so the code it writes cannot just
//! say `::backstop`: with only `backstop-http` as a dependency there is no
//! `::backstop`. It reads the package's `Cargo.toml` instead (as cargo
//! passes it, `CARGO_MANIFEST_DIR`), and finds which of the crates that
//! hold backstop is a dependency, and under what name (a dependency may be
//! renamed: `bs = { package = "backstop", .. }`, also through the
//! workspace's `[workspace.dependencies]`).
//!
//! When the manifest cannot be read (a build that is not cargo's), the
//! crates' own names are used; when it is read and none of the crates is
//! in it, the attribute's error says what to add or write.

use std::path::{Path, PathBuf};

use toml::Table;

/// A crate that holds backstop, and where backstop is in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Holder {
    /// The package's name on crates.io: `backstop-http`.
    pub(crate) package: &'static str,
    /// The path of backstop inside it: `""` for backstop itself, `"::backstop"` for a re-export.
    pub(crate) inner: &'static str,
}

/// The crates `#[backstop::retry]` may come through, in the order they are preferred.
pub(crate) const CORE: &[Holder] = &[
    Holder { package: "backstop", inner: "" },
    Holder { package: "backstop-http", inner: "::backstop" },
    Holder { package: "backstop-aws", inner: "::backstop" },
];

/// `#[backstop_aws::s3_retry]` comes through backstop-aws only.
pub(crate) const AWS: &[Holder] = &[Holder { package: "backstop-aws", inner: "::backstop" }];

/// `#[backstop_http::api_retry]` comes through backstop-http only.
pub(crate) const HTTP: &[Holder] = &[Holder { package: "backstop-http", inner: "::backstop" }];

/// Where the attribute's crate was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// The crate's name in the package's code: `backstop_http`, or a rename.
    pub(crate) name: String,
    /// The holder it is.
    pub(crate) holder: Holder,
}

/// The first of `holders` the package being compiled can name: `Ok(None)`
/// when its manifest cannot be read, `Err` with what to write when it is
/// read and none of them is in it.
pub(crate) fn find(holders: &[Holder]) -> Result<Option<Found>, String> {
    let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else { return Ok(None) };
    let Some(manifest) = read(&dir.join("Cargo.toml")) else { return Ok(None) };
    let workspace = || workspace_dependencies(&dir);
    match find_in(&manifest, holders, workspace) {
        Some(found) => Ok(Some(found)),
        None => Err(not_found(holders)),
    }
}

/// [`find`] on a manifest already read; `workspace` gives the workspace's
/// `[workspace.dependencies]`, read only if a dependency inherits from it.
pub(crate) fn find_in(manifest: &Table, holders: &[Holder], workspace: impl Fn() -> Option<Table>) -> Option<Found> {
    let own = manifest.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str());
    let tables = dependency_tables(manifest);
    holders.iter().find_map(|holder| {
        // The package itself (its tests, examples and doc tests name it by its own name).
        if own == Some(holder.package) {
            return Some(Found { name: holder.package.replace('-', "_"), holder: *holder });
        }
        tables.iter().find_map(|deps| {
            deps.iter().find_map(|(key, spec)| {
                (package_of(key, spec, &workspace) == holder.package)
                    .then(|| Found { name: key.replace('-', "_"), holder: *holder })
            })
        })
    })
}

/// Every dependency table of a manifest: `[dependencies]`,
/// `[dev-dependencies]`, `[build-dependencies]`, and each of those under
/// `[target.'cfg(..)']`.
fn dependency_tables(manifest: &Table) -> Vec<&Table> {
    const KINDS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];
    let targets = manifest.get("target").and_then(|t| t.as_table()).into_iter().flat_map(|t| t.values());
    std::iter::once(manifest)
        .chain(targets.filter_map(|t| t.as_table()))
        .flat_map(|t| KINDS.iter().filter_map(|kind| t.get(*kind).and_then(|d| d.as_table())))
        .collect()
}

/// The package a dependency entry names: its `package`, the workspace
/// entry's `package` when it inherits one, else its key.
fn package_of(key: &str, spec: &toml::Value, workspace: &impl Fn() -> Option<Table>) -> String {
    if let Some(package) = spec.get("package").and_then(|p| p.as_str()) {
        return package.to_owned();
    }
    if spec.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
        let inherited = workspace()
            .and_then(|deps| deps.get(key).and_then(|d| d.get("package")).and_then(|p| p.as_str()).map(str::to_owned));
        if let Some(package) = inherited {
            return package;
        }
    }
    key.to_owned()
}

/// The `[workspace.dependencies]` of the nearest manifest above `dir` (or
/// at it) that has a `[workspace]`.
fn workspace_dependencies(dir: &Path) -> Option<Table> {
    dir.ancestors().find_map(|d| {
        let manifest = read(&d.join("Cargo.toml"))?;
        let workspace = manifest.get("workspace")?.as_table()?;
        Some(workspace.get("dependencies").and_then(|d| d.as_table()).cloned().unwrap_or_default())
    })
}

fn read(path: &Path) -> Option<Table> {
    std::fs::read_to_string(path).ok()?.parse().ok()
}

/// The error when none of `holders` is a dependency: what to add, or how to say where it is.
pub(crate) fn not_found(holders: &[Holder]) -> String {
    let names: Vec<String> = holders.iter().map(|h| format!("`{}`", h.package)).collect();
    let first = holders[0].package;
    format!(
        "this attribute could not find {} among this package's dependencies (in its Cargo.toml): add \
         `{first} = \"{}\"` to `[dependencies]`, or, if it comes through another crate, say where with \
         `crate = path::to::{}`",
        names.join(" or "),
        env!("CARGO_PKG_VERSION"),
        first.replace('-', "_"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(manifest: &str, holders: &[Holder], workspace: Option<&str>) -> Option<(String, &'static str)> {
        let manifest: Table = manifest.parse().unwrap();
        let workspace = || workspace.map(|w| w.parse::<Table>().unwrap());
        find_in(&manifest, holders, workspace).map(|f| (f.name, f.holder.package))
    }

    #[test]
    fn backstop_itself_is_preferred_to_a_crate_that_re_exports_it() {
        let manifest = "[dependencies]\nbackstop-http = \"0.1\"\nbackstop = \"0.1\"\n";
        assert_eq!(found(manifest, CORE, None), Some(("backstop".into(), "backstop")));
    }

    #[test]
    fn with_only_backstop_http_the_core_attribute_goes_through_it() {
        let manifest = "[package]\nname = \"app\"\n[dependencies]\nbackstop-http = { version = \"0.1\" }\n";
        assert_eq!(found(manifest, CORE, None), Some(("backstop_http".into(), "backstop-http")));
        let manifest = "[dependencies]\nbackstop-aws = \"0.1\"\n";
        assert_eq!(found(manifest, CORE, None), Some(("backstop_aws".into(), "backstop-aws")));
    }

    #[test]
    fn a_renamed_dependency_is_named_as_the_package_names_it() {
        let manifest = "[dependencies]\nbs = { package = \"backstop\", version = \"0.1\" }\n";
        assert_eq!(found(manifest, CORE, None), Some(("bs".into(), "backstop")));
        let manifest = "[dev-dependencies]\nhttp-retry = { package = \"backstop-http\", path = \"x\" }\n";
        assert_eq!(found(manifest, HTTP, None), Some(("http_retry".into(), "backstop-http")));
    }

    #[test]
    fn a_rename_in_the_workspace_is_followed() {
        let manifest = "[dependencies]\nretries = { workspace = true }\n";
        let workspace = "retries = { package = \"backstop-aws\", version = \"0.1\" }\n";
        assert_eq!(found(manifest, AWS, Some(workspace)), Some(("retries".into(), "backstop-aws")));
        let manifest = "[dependencies]\nbackstop-aws = { workspace = true }\n";
        assert_eq!(found(manifest, AWS, Some("")), Some(("backstop_aws".into(), "backstop-aws")));
    }

    #[test]
    fn target_specific_dependencies_count() {
        let manifest = "[target.'cfg(unix)'.dependencies]\nbackstop = \"0.1\"\n";
        assert_eq!(found(manifest, CORE, None), Some(("backstop".into(), "backstop")));
    }

    #[test]
    fn the_package_itself_is_found_by_its_own_name() {
        let manifest = "[package]\nname = \"backstop-http\"\n[dependencies]\nbackstop = \"0.1\"\n";
        assert_eq!(found(manifest, HTTP, None), Some(("backstop_http".into(), "backstop-http")));
    }

    #[test]
    fn none_found_says_what_to_add_and_how_to_point_at_it() {
        assert_eq!(found("[dependencies]\nserde = \"1\"\n", AWS, None), None);
        let message = not_found(CORE);
        assert!(message.contains("`backstop` or `backstop-http` or `backstop-aws`"), "{message}");
        assert!(message.contains("add `backstop = \""), "{message}");
        assert!(message.contains("`crate = path::to::backstop`"), "{message}");
    }
}
