//! Finding what a command names: a table as `layer.table` or `database.table`, and the jobs
//! that write a table (so "not written yet" can say which job to run).

use crate::diagnostic::did_you_mean;
use crate::model::{Domain, Job, Project, Table, TableRef};
use crate::naming::Naming;

/// A table name that is not one of the domain's tables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no table `{name}` in the domain\n  help: {help}")]
pub struct UnknownTable {
    pub name: String,
    /// A close name in the form the user wrote (`did you mean …?`), else every table.
    pub help: String,
}

impl Domain {
    /// The table `name` stands for: `curated.daily_sales` (layer and table, as manifests
    /// write it) or `f01_curated.daily_sales` (the database of this environment, as SQL does).
    pub fn find_table(&self, naming: &Naming, name: &str) -> Result<(&Project, &Table), UnknownTable> {
        let database_form = |t: &Table| naming.qualified_table(t);
        self.tables()
            .find(|(_, t)| name == t.reference().to_string() || name == database_form(t))
            .ok_or_else(|| {
                // Suggest in the form the user wrote: a database name starts with the domain's
                // abbreviation, a layer name does not.
                let as_sql = crate::model::Layer::ALL
                    .iter()
                    .any(|l| name.starts_with(&format!("{}.", naming.database(*l))));
                let known: Vec<String> = self
                    .tables()
                    .map(|(_, t)| {
                        if as_sql {
                            database_form(t)
                        } else {
                            t.reference().to_string()
                        }
                    })
                    .collect();
                let help = did_you_mean(name, known.iter().map(String::as_str))
                    .unwrap_or_else(|| format!("tables are: {}", known.join(", ")));
                UnknownTable {
                    name: name.to_string(),
                    help,
                }
            })
    }

    /// The jobs whose output is `table`, each with its project.
    pub fn writers<'a>(&'a self, table: &'a TableRef) -> impl Iterator<Item = (&'a Project, &'a Job)> + 'a {
        self.projects
            .iter()
            .flat_map(|p| p.jobs.iter().map(move |j| (p, j)))
            .filter(move |(_, j)| &j.output == table)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Env, Naming};

    fn example() -> crate::Domain {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        crate::load_domain(&root).expect("the example domain is valid")
    }

    #[test]
    fn a_table_is_found_by_layer_or_by_database_and_a_typo_gets_the_close_name_in_its_own_form() {
        let d = example();
        let naming = Naming::for_domain(&d, Env::Local);
        let (p, t) = d.find_table(&naming, "curated.daily_sales").unwrap();
        assert_eq!((p.name.as_str(), t.name.as_str()), ("sales", "daily_sales"));
        let by_db = format!("{}.daily_sales", naming.database(t.layer));
        assert_eq!(d.find_table(&naming, &by_db).unwrap().1.name.as_str(), "daily_sales");
        // Raw tables are tables too: the caller decides whether it can use one.
        assert!(d.find_table(&naming, "raw.sales_events").is_ok());

        let e = d.find_table(&naming, "curated.daily_sale").unwrap_err();
        assert_eq!(e.help, "did you mean `curated.daily_sales`?");
        let e = d.find_table(&naming, &format!("{by_db}x")).unwrap_err();
        assert_eq!(e.help, format!("did you mean `{by_db}`?"));
        let e = d.find_table(&naming, "zzz").unwrap_err();
        assert!(
            e.help.starts_with("tables are: ") && e.help.contains("raw.sales_events"),
            "{}",
            e.help
        );
    }

    #[test]
    fn the_writer_of_a_table_is_the_job_whose_output_it_is() {
        let d = example();
        let naming = Naming::for_domain(&d, Env::Local);
        let (_, t) = d.find_table(&naming, "curated.daily_sales").unwrap();
        let r = t.reference();
        let writers: Vec<_> = d.writers(&r).map(|(p, j)| (p.name.as_str(), j.name.as_str())).collect();
        assert_eq!(writers, [("sales", "daily_sales")]);
        let (_, raw) = d.find_table(&naming, "raw.sales_events").unwrap();
        assert_eq!(d.writers(&raw.reference()).count(), 0);
    }
}
