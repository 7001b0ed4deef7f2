//! The meshkit domain model.
//!
//! `domain.json` and `projects/*/project.toml` are parsed into their unchecked shapes
//! ([`load::unchecked`]), then validated into the checked model ([`model`]) by
//! [`load::load_domain`], which reports every problem at once with file, line, field and a fix. [`naming::Naming`] derives every AWS
//! name and path from the model. Nothing here knows about engines, clouds or async.

pub mod consume;
pub mod cron;
pub mod diagnostic;
pub mod env;
pub mod ident;
pub mod load;
pub mod lookup;
pub mod model;
pub mod naming;
pub mod param;
pub mod product;
pub mod scaffold;
pub mod source;
pub mod sql_columns;

pub use consume::{Consumed, ProductInput, SharedTable};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use env::Env;
pub use ident::{DomainAbbr, Name, ProjectSlug};
pub use load::{find_root, load_domain};
pub use lookup::UnknownTable;
pub use model::*;
pub use naming::{BucketKind, NameKind, NameSheet, Naming, ObjectPath};
pub use param::ParamType;
pub use product::{Consumer, Freshness, Product};
