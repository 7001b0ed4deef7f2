//! Command-line arguments. `--help` on every command explains what it does and shows an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mesh_domain::{Classification, Env, Layer};

#[derive(Parser)]
#[command(
    name = "mesh",
    version,
    about = "meshkit: build, run and deploy a data-mesh domain from one model",
    long_about = "meshkit: build, run and deploy a data-mesh domain from one model.\n\n\
        A domain repository has a domain.json (name, abbreviation, region, tool versions) and one\n\
        projects/<name>/project.toml per project (tables, jobs, optimizers, pipelines). Every AWS\n\
        name and path is derived from them.\n\n\
        Environments: a command that takes --env without being given it uses the ENV variable,\n\
        and without that, local (mesh run, sql and config also read ENV from .env).\n\
        Commands with nothing to do locally (build, deploy, bootstrap)\n\
        ask for dev, int or prod; render and check iam cover all three unless one is named.\n\n\
        Exit codes: 0 success, 1 runtime failure, 2 invalid input or usage.",
    after_help = "Start here:\n  mesh validate                 check every file of the domain\n  mesh describe                 the domain as a tree\n  mesh names --env dev          every derived AWS name"
)]
pub struct Cli {
    /// Domain root (the folder with domain.json). Default: the nearest one above the current folder.
    #[arg(long, global = true, env = "MESH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// `mesh plan --format`.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum PlanFormat {
    #[default]
    Text,
    Json,
    /// For a pull request.
    Markdown,
}

#[derive(Subcommand)]
pub enum Command {
    /// Check domain.json and every project manifest; print every problem at once.
    #[command(
        after_help = "Each problem names the file, line and field, and how to fix it. Exit 2 when anything is wrong."
    )]
    Validate {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Also compare with the model at this git ref (e.g. the pull request's base branch):
        /// a table removed, moved or renamed, or a slug changed, without a declaration
        /// (`retired`, `moved_from`, `moved_from_slug`) is refused, naming the data it would
        /// orphan; a data product's contract changed in a breaking way without a major version
        /// bump exits 2.
        #[arg(long, value_name = "REF")]
        against: Option<String>,
    },
    /// Print every derived AWS name and path: buckets, databases, jobs, roles, prefixes.
    #[command(after_help = "Example:\n  mesh names --env dev --project sales --format json")]
    Names {
        /// Environment whose names to derive (default: $ENV, else local).
        #[arg(long, env = "ENV", default_value = "local", value_parser = parse_env)]
        env: Env,
        /// Only this project.
        #[arg(long)]
        project: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// The domain's data products: version, contract file, consumers, and in the environment the
    /// table's latest commit and whether the freshness promise holds.
    #[command(after_help = "Example:\n  mesh products --env dev --format json")]
    Products {
        /// Environment whose tables to look at (default: $ENV, else local).
        #[arg(long, value_parser = parse_env)]
        env: Option<Env>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Pin each product of another domain the projects consume ([[consumes]]) at its producer's
    /// current snapshot, read from the producer's checkout: writes products.lock.json.
    #[command(after_help = "Example:\n  mesh pull        # then commit products.lock.json")]
    Pull {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show the domain as a tree: projects, tables, jobs (by what they do) and pipelines; or
    /// one table: its columns, layout, the jobs that write and read it, its maintenance.
    #[command(
        after_help = "Examples:\n  mesh describe                          the domain as a tree\n  mesh describe curated.daily_sales      one table (also f01_curated.daily_sales)\n  mesh describe --format json            the whole model"
    )]
    Describe {
        /// A table, as layer.table or database.table.
        table: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Run pipelines (or one job) locally on the embedded engine: DataFusion, the SQLite
    /// Iceberg catalog and the local lake.
    #[command(
        after_help = "Examples:\n  mesh run --sample-data              generate sample data, then run every pipeline\n  mesh run sales                      every pipeline of project sales\n  mesh run sales --job daily_sales --param run_date=2026-11-27\n  mesh run --job sales_by_day --from 2026-10-01 --to 2026-11-09   backfill a time-range job\n\nrun_date defaults to today (UTC). Each run writes .mesh/runs/<run>.json; `mesh report` turns it into HTML.\nExit 1 when a step fails (its dependents are skipped; other branches finish)."
    )]
    Run(RunArgs),
    /// Run one read-only SQL query on the domain's tables (`f01_curated.daily_sales` or
    /// `curated.daily_sales`; also `raw.<t>_rejected` and `<layer>.<t>_check_failures`).
    #[command(
        after_help = "The dialect is DataFusion's SQL with Spark's functions, the engine `mesh run` runs job SQL on locally (date_add, concat_ws, nvl, …). It is not Spark SQL: Spark-only syntax such as time travel (VERSION AS OF, TIMESTAMP AS OF) is refused; `mesh table snapshots TABLE` lists a table's snapshots. Only the tables the query names are read. `SHOW TABLES` lists every table a query can name.\n\nExamples:\n  mesh sql \"SELECT store_id, SUM(revenue) FROM f01_curated.daily_sales GROUP BY store_id\"\n  mesh sql \"SELECT * FROM raw.legacy_orders_rejected LIMIT 10\" --format json\n  mesh sql \"SHOW TABLES\""
    )]
    Sql {
        query: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Look at an Iceberg table: schema, history, snapshots, data files.
    #[command(subcommand)]
    Table(TableCommand),
    /// What the model at HEAD changes: against an environment's tables and job state, or
    /// against the model at a git ref. Each change is classified; refused ones are named.
    #[command(
        after_help = "Classes: additive, type promotion (int→long, float→double, decimal(p,s)→decimal(p',s) with p' ≥ p),\nbreaking, destructive, needs a rewrite. `mesh run` applies the same plan to the tables and jobs\nit would run and stops with exit 2 on a refused change.\n\nExamples:\n  mesh plan                              against the local lake and catalog\n  mesh plan --env dev                    against dev's Glue catalog\n  mesh plan --against origin/main --format markdown   for a pull request"
    )]
    Plan {
        /// Environment whose catalog and job state to compare with (default: $ENV, else local).
        #[arg(long, value_parser = parse_env, conflicts_with = "against")]
        env: Option<Env>,
        /// Compare with the model at this git ref instead of an environment.
        #[arg(long, value_name = "REF")]
        against: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: PlanFormat,
        /// Exit 2 when a change is refused (after printing the plan): the deploy workflow's
        /// plan job uses it, so nothing the plan refuses reaches the approval.
        #[arg(long)]
        check: bool,
    },
    /// Apply the model's declared moves and retirements to an environment: a table with
    /// `moved_from` (or in a project with `moved_from_slug`) gets its old place's rows and job
    /// state, then the old entry and files are dropped; a `retired` table's catalog entry and
    /// files are dropped. `mesh run` does the same first; deploys run it after `terraform apply`.
    #[command(
        after_help = "Examples:\n  mesh apply --dry-run          what the local lake needs, nothing changed\n  mesh apply --env dev          move and drop in dev's Glue catalog and buckets"
    )]
    Apply {
        /// Environment to apply to (default: $ENV, else local).
        #[arg(long, value_parser = parse_env)]
        env: Option<Env>,
        /// Print what would be moved or dropped, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// A job's state (bookmarks, intervals done, fingerprint) as its output table holds it.
    #[command(subcommand)]
    State(StateCommand),
    /// Write deterministic synthetic raw data for every raw table (local lake, or the S3 raw bucket of ENV).
    #[command(
        name = "sample-data",
        after_help = "The example tables get realistic data: sales events, customer CDC events (inserts, updates,\ndeletes) and legacy orders with some malformed rows. Other raw tables get --rows rows of values\ndrawn from their schema. The same --seed always writes the same files.\n\nExample:\n  mesh sample-data --rows 100000 --seed 7"
    )]
    SampleData {
        /// Rows per raw table (of the example tables: sales events; legacy orders get a tenth,
        /// customers a twentieth).
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Show the resolved runtime configuration and where each value came from.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List the recorded runs (.mesh/runs), newest first: id, time, env, status, failed steps.
    #[command(after_help = "Examples:\n  mesh runs\n  mesh runs --limit 5 --format json")]
    Runs {
        /// How many runs, newest first (0: all).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Write a self-contained HTML report of a run (default: the latest).
    #[command(
        after_help = "Example:\n  mesh report                      the latest run, written next to its record\n  mesh report 20261127T080000000Z-01234 --out run.html"
    )]
    Report {
        /// Run id (a file name under .mesh/runs without .json).
        run: Option<String>,
        /// Output file. Default: .mesh/runs/<run>.html
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Create a new domain repository that validates.
    #[command(
        after_help = "Example:\n  mesh init finance02 --abbr f02 --region eu-west-1 \\\n    --account dev=111111111111 --account int=222222222222 --account prod=333333333333\n\nWith the three accounts, the domain also gets its GitHub workflows and a .env, so\n`mesh validate` and `mesh render` work right away."
    )]
    Init(InitArgs),
    /// Add a project, table or job. The domain is validated after the change and the change
    /// is rolled back if it would make the domain invalid.
    #[command(subcommand)]
    New(NewCommand),
    /// Table maintenance with each table's manifest settings: compaction, snapshot expiry and
    /// orphan-file cleanup, safe under concurrent writers.
    #[command(
        after_help = "Examples:\n  mesh optimize --dry-run                      print what would be rewritten or deleted\n  mesh optimize sales --table curated.daily_sales\n  mesh optimize --only orphans --format json\n\nEvery operation plans first; --dry-run prints the plan (files, counts, bytes) and changes\nnothing. Unsafe settings (an orphan window under 1 day without --force, retain_last 0) exit 2."
    )]
    Optimize(OptimizeArgs),
    /// Generate the Terraform of every cloud environment (infra/envs/{dev,int,prod}/) and the
    /// GitHub Actions workflows (.github/workflows/).
    #[command(
        after_help = "Examples:\n  mesh render                   write infra/ for dev, int and prod, and .github/workflows/\n  mesh render --env dev --out /tmp/infra      Terraform only\n  mesh render --check           exit 1 and list files that differ from the model\n\nWorkflows are rendered (and checked) when neither --env nor --out is given."
    )]
    Render {
        /// Only this environment (dev, int or prod). Default: all three.
        #[arg(long, value_parser = parse_env)]
        env: Option<Env>,
        /// Output folder. Default: infra/ in the domain root.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Write nothing; exit 1 when a file on disk differs from what the model renders.
        #[arg(long)]
        check: bool,
    },
    /// Verify generated infrastructure.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Write the deployable artifacts: per job a JSON spec and its SQL, plus the Glue runner.
    #[command(after_help = "Files are laid out as bucket/key, exactly as in the artifacts bucket:
  .mesh/build/dev/f01-artifacts-dev/runtime/glue_runner.py
  .mesh/build/dev/f01-artifacts-dev/jobs/pj01/daily_sales.json

Example:
  mesh build --env dev")]
    Build {
        /// Environment the specs are for: dev, int or prod (default: $ENV).
        #[arg(long, env = "ENV", value_parser = parse_env)]
        env: Option<Env>,
        /// Output folder. Default: .mesh/build/<env> in the domain root.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Upload to an environment's AWS account.
    #[command(subcommand)]
    Deploy(DeployCommand),
    /// Start a deployed pipeline on AWS now (Step Functions), as its schedule would.
    #[command(
        after_help = "The execution gets the input the schedule gives it (`scheduled_time`), so every job receives\nthe run date. Uses the standard AWS environment (credentials, AWS_REGION, AWS_ENDPOINT_URL).\n\nExamples:\n  mesh start sales --env dev                          the project's only pipeline, today\n  mesh start sales --pipeline main --env dev --run-date 2026-11-27 --wait\n\nExit 1 when --wait sees the execution fail (its error and cause are printed)."
    )]
    Start {
        project: String,
        /// Which pipeline (default: the project's only one).
        #[arg(long)]
        pipeline: Option<String>,
        /// dev, int or prod (default: $ENV).
        #[arg(long, env = "ENV", value_parser = parse_env)]
        env: Env,
        /// The run date the jobs receive (default: today, UTC, from the current time).
        #[arg(long, value_name = "YYYY-MM-DD")]
        run_date: Option<chrono::NaiveDate>,
        /// Wait for the execution to end; exit 1 unless it succeeded.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many minutes.
        #[arg(long, default_value_t = 120, value_name = "MINUTES", requires = "wait")]
        timeout: u64,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Print a shell completion script for mesh.
    #[command(
        after_help = "Examples:\n  mesh completions bash > ~/.local/share/bash-completion/completions/mesh\n  mesh completions zsh > \"${fpath[1]}/_mesh\"\n  mesh completions fish > ~/.config/fish/completions/mesh.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prepare a new AWS account for Terraform: create the artifacts bucket (which holds the
    /// Terraform state) and the domain's data key, with the settings storage.tf declares.
    #[command(
        after_help = "Terraform keeps its state in the artifacts bucket that its own storage.tf declares, so
        that bucket, and the KMS key that encrypts it, must exist before `terraform init`. Bootstrap
        creates both with the same encryption, versioning, public-access block, lifecycle and TLS-only
        policy, then Terraform adopts them with `terraform import`. Every step reads first and changes
        only what differs: re-running is safe. Run it once per account, with credentials of the
        account domain.json names for the environment (checked before anything is created).

        Examples:
  mesh bootstrap --env dev --dry-run     what would be created or changed
          mesh bootstrap --env dev               create, then print the terraform import commands
          mesh bootstrap --env dev --import      create, then terraform init + import (needs terraform)"
    )]
    Bootstrap {
        /// dev, int or prod (default: $ENV).
        #[arg(long, env = "ENV", value_parser = parse_env)]
        env: Env,
        /// Read and report; create or change nothing.
        #[arg(long, conflicts_with = "import")]
        dry_run: bool,
        /// Then run `terraform init` and import what Terraform does not hold yet, in infra/envs/<env>.
        #[arg(long)]
        import: bool,
        /// The Terraform program for --import.
        #[arg(long, default_value = "terraform", value_name = "PATH")]
        terraform: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Write the .env of this checkout from the model: ENV, the region and the domain's
    /// prefixed settings ({ABBR}_*) as they resolve.
    #[command(
        after_help = "Examples:\n  mesh env                      .env for local runs\n  mesh env --env dev --force    replace it with one that targets dev\n  mesh env --stdout             print it, write nothing"
    )]
    Env {
        #[arg(long, default_value = "local", value_parser = parse_env)]
        env: Env,
        /// Replace an existing .env.
        #[arg(long)]
        force: bool,
        /// Print the file instead of writing it.
        #[arg(long)]
        stdout: bool,
    },
}

#[derive(Subcommand)]
pub enum DeployCommand {
    /// Upload the job specs, SQL and Glue runner to the artifacts bucket over the S3 API.
    #[command(
        after_help = "Uses the standard AWS environment: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or web identity,\nECS, instance credentials), AWS_REGION (default: the domain's region), AWS_ENDPOINT_URL for an\nS3-compatible server.\n\nExample:\n  mesh deploy artifacts --env dev --dry-run      list bucket, key and size; upload nothing"
    )]
    Artifacts {
        /// dev, int or prod (default: $ENV).
        #[arg(long, env = "ENV", value_parser = parse_env)]
        env: Env,
        /// List what would be uploaded and upload nothing.
        #[arg(long)]
        dry_run: bool,
        /// Upload to prod from outside CI, bypassing the approved deploy workflow.
        #[arg(long)]
        yes: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Subcommand)]
pub enum CheckCommand {
    /// Evaluate every rendered IAM policy against the project-isolation matrix; exit 1 on a leak.
    #[command(after_help = "Example:\n  mesh check iam --env dev")]
    Iam {
        /// Only this environment. Default: dev, int and prod.
        #[arg(long, value_parser = parse_env)]
        env: Option<Env>,
        /// Rendered infrastructure folder. Default: infra/ in the domain root.
        #[arg(long, value_name = "DIR")]
        infra: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum StateCommand {
    /// The job's state keys and values, and its fingerprint committed and now.
    #[command(after_help = "Example:\n  mesh state show events_incr --format json")]
    Show {
        /// Job name (or project/job).
        job: String,
        #[arg(long, value_parser = parse_env)]
        env: Option<Env>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Reset the job's state in one commit of its output table (its rows stay): the next run
    /// reads every incremental input in full and starts a time-range job's intervals over.
    #[command(
        after_help = "To also replace the rows, run `mesh run --job JOB --full-refresh` instead.\n\nExample:\n  mesh state reset events_incr"
    )]
    Reset {
        /// Job name (or project/job).
        job: String,
        #[arg(long, value_parser = parse_env)]
        env: Option<Env>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Subcommand)]
pub enum TableCommand {
    /// Schema, partition spec, location, current snapshot and properties.
    Show {
        table: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Snapshot log: when each snapshot became current.
    History {
        table: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Every snapshot with its operation and summary (added/deleted files and rows, totals).
    Snapshots {
        table: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Live data files of the current snapshot with partition, rows and size.
    Files {
        table: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Read every file the current snapshot references (manifests, data files in full); exit 1
    /// naming each missing or damaged file.
    Check {
        table: String,
        /// Every retained snapshot, not only the current one.
        #[arg(long)]
        all_snapshots: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Adopt the newest metadata file of the table's folder into a catalog that lost the table.
    Register { table: String },
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print every setting: value and source (default, mesh.toml, variable or flag).
    #[command(
        after_help = "Layers, each overriding the one before: defaults < mesh.toml (then its [env.<ENV>] table)\n< {ABBR}_* variables (also read from .env) < ENV, LOG_LEVEL, LOG_FORMAT < flags."
    )]
    Show {
        /// Resolve as if this environment were selected (same as the ENV variable, but wins over it).
        #[arg(long, value_parser = parse_env)]
        env: Option<Env>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Subcommand)]
pub enum NewCommand {
    /// Add projects/NAME/project.toml.
    #[command(after_help = "Example:\n  mesh new project inventory --slug pj04 --owner stock-team")]
    Project {
        name: String,
        /// Short unique code used in every AWS name of the project.
        #[arg(long)]
        slug: String,
        #[arg(long, default_value = "unassigned")]
        owner: String,
        #[arg(long, value_enum, default_value = "internal")]
        classification: ClassificationArg,
        /// Who to ask about the project's data (an email or a channel).
        #[arg(long)]
        contact: Option<String>,
        /// What the project is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// Add a table to a project.
    #[command(after_help = "Examples:
  mesh new table sales returns --layer raw --format csv --column return_id:string! \\
    --column amount:decimal(10,2) --comment amount='refunded, in EUR' \\
    --csv-delimiter ';' --csv-null-value NA --bad-rows quarantine
  mesh new table sales returns_latest --layer curated --column return_id:string! \\
    --column return_ts:timestamp --identifier return_id --partition-by 'day(return_ts)' \\
    --sort-order 'return_ts desc' --description 'One row per return'

A column is NAME:TYPE; a trailing ! makes it NOT NULL. Types: boolean, int, long, float, double, decimal(P,S), date, timestamp, timestamptz, string, binary.")]
    Table(NewTableArgs),
    /// Add a job (manifest entry + SQL file) to a project.
    #[command(after_help = "Examples:
  mesh new job sales returns_daily --input raw.returns --output curated.returns_daily \\
    --mode overwrite --check not_null:return_id --check range:amount:0: --warn-check row_count_min:1
  mesh new job sales returns_latest --input raw.returns --output curated.returns \\
    --mode merge --key return_id --order-by updated_at --delete-when \"op = 'D'\"
  mesh new job sales returns_by_day --input raw.returns --output curated.returns_by_day \\
    --time-column return_date --grain day
  mesh new job sales returns_by_day --input raw.returns --output curated.returns_by_day \\
    --time-column return_date --input-time-column return_ts --grain day --lag 2h
  mesh new job sales returns_clean --input raw.returns --output refined.returns --incremental

Checks (--check KIND:ARGS fails the run, --warn-check KIND:ARGS only warns):
  not_null:COL[,COL…]          no NULL in these columns
  unique:COL[,COL…]            no two rows with the same values
  accepted_values:COL:V[,V…]   only these values
  range:COL:MIN:MAX            MIN <= COL <= MAX; MIN or MAX may be empty: range:amount:0:
  row_count_min:N              at least N rows written
  sql:QUERY                    a query over `output` that returns the failing rows

With the output table declared, the SQL selects exactly its columns; columns the input lacks are left as CAST(NULL …) with a TODO and named on stdout.")]
    Job(NewJobArgs),
    /// Add a pipeline to a project: its jobs as a DAG of their lineage, then table maintenance.
    #[command(after_help = "Example:
  mesh new pipeline sales nightly --job clean_returns --job returns_daily --job stores \\
    --optimize curated.returns_daily --schedule \"cron(0 6 * * ? *)\" --retries 2

Each job runs after the pipeline's jobs that write its inputs (returns_daily after clean_returns when clean_returns writes what returns_daily reads); jobs with no such link run side by side, so a failing job skips only the jobs downstream of it. An --optimize step runs after the jobs that write its table. Add an order the tables do not show with --depends-on STEP=DEP.")]
    Pipeline(NewPipelineArgs),
}

/// `mesh new table`.
#[derive(Debug, Args)]
pub struct NewTableArgs {
    pub project: String,
    pub name: String,
    #[arg(long, value_enum)]
    pub layer: LayerArg,
    /// NAME:TYPE[!] (repeat).
    #[arg(long = "column", required = true, value_name = "NAME:TYPE[!]")]
    pub columns: Vec<String>,
    /// A column's description, COLUMN=TEXT (repeat): its comment in the manifest and in Glue.
    #[arg(long = "comment", value_name = "COLUMN=TEXT")]
    pub comments: Vec<String>,
    /// What the table holds.
    #[arg(long)]
    pub description: Option<String>,
    /// Partition field (repeat): a column (raw tables: a Hive folder), or for Iceberg tables
    /// year(c), month(c), day(c), hour(c), bucket(N, c), truncate(N, c).
    #[arg(long = "partition-by", value_name = "FIELD")]
    pub partition_by: Vec<String>,
    /// Iceberg tables: the order rows are written in (repeat), `COLUMN [asc|desc] [nulls first|last]`.
    #[arg(long = "sort-order", value_name = "COLUMN [desc]")]
    pub sort_order: Vec<String>,
    /// Iceberg tables: a column of the row's identity (repeat for a composite key); merge keys
    /// and Iceberg identifier fields. Must be NOT NULL (`!`).
    #[arg(long = "identifier", value_name = "COLUMN")]
    pub identifier: Vec<String>,
    /// Iceberg tables: the data file size writers and compaction aim for.
    #[arg(long, value_name = "MB")]
    pub target_file_size_mb: Option<u32>,
    /// Raw tables: the file format.
    #[arg(long, value_enum)]
    pub format: Option<RawFormatArg>,
    /// Raw tables: what a read does with a row that does not fit the columns (default: fail).
    #[arg(long, value_enum)]
    pub bad_rows: Option<BadRowsArg>,
    /// CSV: the field separator, one character (`tab` or `\t` for a tab; default `,`).
    #[arg(long, value_name = "CHAR")]
    pub csv_delimiter: Option<String>,
    /// CSV: the quote character (default `"`).
    #[arg(long, value_name = "CHAR")]
    pub csv_quote: Option<String>,
    /// CSV: the escape character inside quotes (default: none, a quote is doubled).
    #[arg(long, value_name = "CHAR")]
    pub csv_escape: Option<String>,
    /// CSV: the text that stands for NULL (default: an empty field).
    #[arg(long, value_name = "TEXT")]
    pub csv_null_value: Option<String>,
    /// CSV: the files have no header line (columns are read in declared order).
    #[arg(long)]
    pub csv_no_header: bool,
}

/// `mesh new job --mode`: how a run writes the query's rows to the output table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Add the query's rows to the table (the default; with --incremental, the rows of the new input).
    Append,
    /// Replace the whole table with the query's rows (a time-range job: only its interval's rows).
    Overwrite,
    /// Replace exactly the partitions the query's rows fall in; the other partitions are kept.
    #[value(name = "overwrite_partitions", alias = "overwrite-partitions")]
    OverwritePartitions,
    /// Update the rows whose --key matches a row of the query, insert the others (see
    /// --on-duplicate, --order-by, --delete-when).
    Merge,
}

impl ModeArg {
    pub fn as_str(self) -> &'static str {
        match self {
            ModeArg::Append => "append",
            ModeArg::Overwrite => "overwrite",
            ModeArg::OverwritePartitions => "overwrite_partitions",
            ModeArg::Merge => "merge",
        }
    }
}

/// `mesh new job --on-duplicate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnDuplicateArg {
    /// A key the query returns twice fails the run, naming the key (the default).
    Error,
    /// Keep the row with the greatest --order-by value per key.
    #[value(name = "keep_latest", alias = "keep-latest")]
    KeepLatest,
}

/// `mesh new job --on-change`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnChangeArg {
    /// Stop before anything runs, naming the job and the fix (the default).
    Fail,
    /// Keep what was computed; the new definition applies to new input and intervals only.
    #[value(name = "forward_only", alias = "forward-only")]
    ForwardOnly,
    /// Recompute the job from scratch: state reset, output replaced.
    #[value(name = "full_refresh", alias = "full-refresh")]
    FullRefresh,
}

/// `mesh new job --grain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GrainArg {
    Hour,
    Day,
    Month,
}

/// `mesh new table --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RawFormatArg {
    /// Comma-separated (or --csv-delimiter) text with a header line.
    Csv,
    /// JSON lines: one object per line.
    Json,
    Parquet,
}

/// `mesh new table --bad-rows`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BadRowsArg {
    /// Stop the read, naming the file, line and column.
    Fail,
    /// Set the row aside in `<table>_rejected` with the reason, and go on.
    Quarantine,
}

/// `mesh new job`.
#[derive(Debug, Args)]
pub struct NewJobArgs {
    pub project: String,
    pub name: String,
    /// Input table as layer.table (repeat).
    #[arg(long = "input", value_name = "LAYER.TABLE")]
    pub inputs: Vec<String>,
    /// Output table as layer.table.
    #[arg(long, value_name = "LAYER.TABLE")]
    pub output: String,
    /// How a run writes the query's rows [default: append; overwrite with --time-column].
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// What the job does.
    #[arg(long)]
    pub description: Option<String>,
    /// Read the inputs incrementally: each run sees only what arrived since its last commit.
    #[arg(long, conflicts_with = "time_column")]
    pub incremental: bool,
    /// A time-range job: the output's time column (each run replaces one interval of it).
    #[arg(long, value_name = "COLUMN", requires = "grain")]
    pub time_column: Option<String>,
    /// Interval of a time-range job.
    #[arg(long, value_enum, requires = "time_column")]
    pub grain: Option<GrainArg>,
    /// The input's column that places a row in the interval, when the input has no column
    /// named as --time-column (the SQL filters on it and selects it as the time column).
    #[arg(long, value_name = "COLUMN", requires = "time_column")]
    pub input_time_column: Option<String>,
    /// Time-range: the first interval a scheduled run catches up from (2026-11-01, 2026-11-01T00, 2026-11).
    #[arg(long, value_name = "INTERVAL", requires = "time_column")]
    pub start: Option<String>,
    /// Time-range: how long after an interval ends its data is complete (30m, 2h, 1d).
    #[arg(long, value_name = "DURATION", requires = "time_column")]
    pub lag: Option<String>,
    /// Time-range: how many of the latest done intervals each scheduled run processes again.
    #[arg(long, value_name = "N", requires = "time_column")]
    pub lookback: Option<u32>,
    /// Merge key column (with --mode merge; repeat for a composite key).
    #[arg(long = "key", value_name = "COLUMN")]
    pub keys: Vec<String>,
    /// Merge: what a key the query returns more than once does [default: error].
    #[arg(long, value_enum)]
    pub on_duplicate: Option<OnDuplicateArg>,
    /// Merge: the column whose greatest value wins among rows of one key (sets --on-duplicate keep_latest).
    #[arg(long, value_name = "COLUMN")]
    pub order_by: Option<String>,
    /// Merge: a condition on the query's rows that deletes the matching row, e.g. "op = 'D'".
    #[arg(long, value_name = "SQL")]
    pub delete_when: Option<String>,
    /// A data-quality check that fails the run (nothing is committed): KIND:ARGS (repeat; see below).
    #[arg(long = "check", value_name = "KIND:ARGS")]
    pub checks: Vec<String>,
    /// A check that only warns: the write goes on (same KIND:ARGS as --check).
    #[arg(long = "warn-check", value_name = "KIND:ARGS")]
    pub warn_checks: Vec<String>,
    /// Default of a run parameter `${KEY}` of the SQL (repeat).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// A stateful job (incremental or time-range) whose definition changed since its state
    /// was committed [default: fail].
    #[arg(long, value_enum)]
    pub on_change: Option<OnChangeArg>,
    /// Glue worker type: G.025X, G.1X, G.2X, G.4X or G.8X [default: G.1X].
    #[arg(long, value_name = "TYPE")]
    pub worker_type: Option<String>,
    /// Glue workers [default: 2].
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
    /// Glue job timeout [default: 60].
    #[arg(long, value_name = "MINUTES")]
    pub timeout_minutes: Option<u32>,
}

/// `mesh new pipeline`.
#[derive(Debug, Args)]
pub struct NewPipelineArgs {
    pub project: String,
    pub name: String,
    /// A job to run (repeat); it runs after the pipeline's jobs that write its inputs.
    #[arg(long = "job", value_name = "JOB")]
    pub jobs: Vec<String>,
    /// A table to maintain after the jobs that write it, as layer.table (repeat).
    #[arg(long = "optimize", value_name = "LAYER.TABLE")]
    pub optimize: Vec<String>,
    /// An order the tables do not show: STEP runs after DEP (repeat; optimize steps are
    /// named optimize_<table>).
    #[arg(long = "depends-on", value_name = "STEP=DEP")]
    pub depends_on: Vec<String>,
    /// Retries of each job step after a failure.
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// EventBridge schedule of the pipeline on AWS, e.g. `cron(0 6 * * ? *)`.
    #[arg(long)]
    pub schedule: Option<String>,
    /// How many steps run at once.
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<u32>,
    /// Who is emailed when a run on AWS fails (repeat).
    #[arg(long = "alert-email", value_name = "EMAIL")]
    pub alert_emails: Vec<String>,
    /// What the pipeline is for.
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OnlyArg {
    Compaction,
    Retention,
    Orphans,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LayerArg {
    Raw,
    Refined,
    Curated,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ClassificationArg {
    Public,
    Internal,
    Confidential,
    Restricted,
}

impl From<ClassificationArg> for Classification {
    fn from(c: ClassificationArg) -> Classification {
        match c {
            ClassificationArg::Public => Classification::Public,
            ClassificationArg::Internal => Classification::Internal,
            ClassificationArg::Confidential => Classification::Confidential,
            ClassificationArg::Restricted => Classification::Restricted,
        }
    }
}

impl From<LayerArg> for Layer {
    fn from(l: LayerArg) -> Layer {
        match l {
            LayerArg::Raw => Layer::Raw,
            LayerArg::Refined => Layer::Refined,
            LayerArg::Curated => Layer::Curated,
        }
    }
}

pub fn parse_env(s: &str) -> Result<Env, String> {
    s.parse::<Env>().map_err(|e| e.to_string())
}

/// `mesh run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Projects to run (default: all).
    pub projects: Vec<String>,
    /// Only this job, outside its pipeline.
    #[arg(long)]
    pub job: Option<String>,
    /// Only this pipeline: of each named project, or, with no project named, of every project
    /// that has a pipeline so named.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Run parameter bound into the SQL as ${KEY} (repeat).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Environment (default: $ENV, else local). local runs on the embedded engine and the
    /// local lake; dev, int and prod run here too, against that environment's Glue catalog
    /// and S3 buckets (a deployed pipeline runs on AWS Glue through Step Functions).
    #[arg(long, value_parser = parse_env)]
    pub env: Option<Env>,
    /// Generate sample raw data first (see `mesh sample-data`).
    #[arg(long)]
    pub sample_data: bool,
    /// Rows per raw table with --sample-data (see `mesh sample-data --help`).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Backfill: run every interval from this date (YYYY-MM-DD, YYYY-MM-DDTHH, YYYY-MM) on,
    /// in order, skipping intervals already done.
    #[arg(long, value_name = "DATE", requires = "to")]
    pub from: Option<String>,
    /// Last interval of the backfill (included).
    #[arg(long, value_name = "DATE", requires = "from")]
    pub to: Option<String>,
    /// Re-run intervals already done.
    #[arg(long, requires = "from")]
    pub force: bool,
    /// The run's time (UTC unless an offset is given): 2026-12-07T06:00:00Z, 2026-12-07T06:00
    /// or 2026-12-07. Default: now. A time-range job without --param run_date processes the
    /// intervals complete at this time and not yet done, oldest first (catch-up after a pause),
    /// never the interval in progress; pass a schedule's time to replay that scheduled run.
    /// `${run_date}` of other jobs defaults to its date. Intervals not complete at this time
    /// (e.g. --param run_date or --to in the future) are refused.
    #[arg(long, value_name = "TIMESTAMP", value_parser = parse_at)]
    pub at: Option<chrono::NaiveDateTime>,
    /// Recompute the job from scratch: reset its state and empty its output in one commit,
    /// re-run a time-range job's intervals done before, then run it (incremental inputs are
    /// read in full).
    #[arg(long, requires = "job")]
    pub full_refresh: bool,
    /// Go on despite destructive, breaking or rewrite-needing table changes that `mesh plan`
    /// reports for the tables this run writes.
    #[arg(long)]
    pub allow_destructive: bool,
    /// Run only these jobs, dbt-style (repeat, or separate by spaces): JOB, JOB+ (and every
    /// job downstream, by declared inputs and outputs), +JOB (and upstream), layer.table[+]
    /// (the jobs writing it; of a raw table, those reading it), project:NAME. The selected
    /// jobs run on their own, in lineage order (no pipeline optimize steps).
    #[arg(long, value_name = "SELECTOR", conflicts_with_all = ["job", "pipeline"])]
    pub select: Vec<String>,
    /// Leave out these jobs (same selectors as --select); alone: every job but these.
    #[arg(long, value_name = "SELECTOR", conflicts_with_all = ["job", "pipeline"])]
    pub exclude: Vec<String>,
}

fn parse_at(s: &str) -> Result<chrono::NaiveDateTime, String> {
    mesh_core::interval::parse_run_time(s)
        .ok_or_else(|| format!("`{s}` is not a time: use 2026-12-07T06:00:00Z, 2026-12-07T06:00 (UTC), 2026-12-07T07:00:00+01:00 or 2026-12-07"))
}

/// `mesh init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to create (may exist, but must not hold a domain.json).
    pub dir: PathBuf,
    /// Domain name (default: the folder name).
    #[arg(long)]
    pub name: Option<String>,
    /// Domain abbreviation, the prefix of every AWS name.
    #[arg(long)]
    pub abbr: String,
    #[arg(long, default_value = "eu-west-1")]
    pub region: String,
    /// AWS account of an environment, ENV=ID (repeat for dev, int and prod).
    #[arg(long = "account", value_name = "ENV=ID")]
    pub accounts: Vec<String>,
    /// The domain's GitHub repository, OWNER/NAME: the only one whose workflows may assume
    /// the deploy and plan roles.
    #[arg(long, value_name = "OWNER/NAME")]
    pub github_repo: Option<String>,
}

/// `mesh optimize`.
#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// Only this project (default: all).
    pub project: Option<String>,
    /// Only this table (`layer.table` or `database.table`).
    #[arg(long)]
    pub table: Option<String>,
    /// Only this operation.
    #[arg(long, value_enum)]
    pub only: Option<OnlyArg>,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Orphan window in hours instead of the manifest's orphans.retention_days.
    #[arg(long, value_name = "HOURS")]
    pub orphan_retention_hours: Option<f64>,
    /// Snapshots to keep instead of the manifest's retention.retain_last.
    #[arg(long, value_name = "N")]
    pub retain_last: Option<u32>,
    /// Allow an orphan window under one day (only when no writer can be running).
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}
