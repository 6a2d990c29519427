//! The one declaration of a group of settings, and what is generated from
//! it: the clap arguments (flag, environment variable, help with the
//! default), the TOML file's table, the layering of the two over the
//! default, and the rows of `docs/reference/configuration.md`.
//!
//! Why a macro of our own rather than figment or config-rs: those layer a
//! file and the environment into a `Deserialize` type, but clap still needs
//! its own struct for flags, environment variables and help, so every
//! setting would again be written twice and its default a third time in the
//! help; they also word their own errors ("missing field", provider
//! metadata), where ours name the setting and say what is allowed, and
//! their environment mapping (`KEYGATE_JWT_ISSUER` → `jwt.issuer`) splits
//! on `_`, which our names contain. clap already layers flags over the
//! environment; this table adds the file and the default under it and is
//! the only place a setting is named.
//!
//! A group is written in four lists, by where a setting may come from:
//! - `fixed`: flag, environment and file, with a default value;
//! - `derived`: flag, environment and file, with a default worked out at
//!   start (from another setting, the host...), described in words;
//! - `secret`: environment and file only: a flag's value is visible to
//!   every user of the machine in `ps`;
//! - `file_only`: the file only, with a default value.

/// One row of the configuration reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingDoc {
    /// The setting's name, dotted by its table: `jwt.issuer`.
    pub name: String,
    /// The TOML table holding it (`None`: the top level) and its key there.
    pub table: Option<String>,
    pub key: String,
    pub env: Option<String>,
    /// Without the leading `--`.
    pub flag: Option<String>,
    pub default: String,
    pub meaning: String,
}

impl SettingDoc {
    pub(crate) fn new(
        table: Option<&str>,
        key: &str,
        (env, flag): (Option<&str>, Option<&str>),
        default: String,
        doc: &[&str],
    ) -> Self {
        let name = match table {
            Some(t) => format!("{t}.{key}"),
            None => key.to_owned(),
        };
        SettingDoc {
            name,
            table: table.map(str::to_owned),
            key: key.to_owned(),
            env: env.map(str::to_owned),
            flag: flag.map(str::to_owned),
            default,
            meaning: join_doc(doc),
        }
    }
}

/// Doc-comment lines as one sentence run.
pub(crate) fn join_doc(doc: &[&str]) -> String {
    doc.iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `--help` text: the meaning, then the default, written once here.
pub(crate) fn help(doc: &[&str], default: &str) -> String {
    format!("{} [default: {default}]", join_doc(doc))
}

/// Declares a group of settings; see the module note for the four lists.
/// `$Args` gets the flags (plus `args_extra` fields written verbatim),
/// `$File` the TOML table (plus `file_extra`), `$Layered` each setting
/// resolved through flag/environment > file > default, and
/// `$Args::reference()` the rows of the configuration reference.
macro_rules! settings {
    (
        table: $table:expr;
        $(#[$args_meta:meta])*
        pub struct $Args:ident { $($args_extra:tt)* }
        $(#[$file_meta:meta])*
        $file_vis:vis struct $File:ident { $($file_extra:tt)* }
        $(#[$layered_meta:meta])*
        pub struct $Layered:ident;
        fixed {$(
            $(#[doc = $fdoc:literal])*
            $fname:ident: $fty:ty = $fdefault:expr,
                flag $fflag:literal, env $fenv:literal, value $fvalue:literal
                $(, $fkey:ident = $fval:expr)*;
        )*}
        derived {$(
            $(#[doc = $ddoc:literal])*
            $dname:ident: $dty:ty = $dshown:literal,
                flag $dflag:literal, env $denv:literal, value $dvalue:literal
                $(, $dkey:ident = $dval:expr)*;
        )*}
        secret {$(
            $(#[doc = $sdoc:literal])*
            $sname:ident: $sty:ty, env $senv:literal;
        )*}
        file_only {$(
            $(#[doc = $odoc:literal])*
            $oname:ident: $oty:ty = $odefault:expr;
        )*}
    ) => {
        $(#[$args_meta])*
        #[derive(Clone, Default, clap::Args)]
        pub struct $Args {
            $(
                #[arg(
                    long = $fflag,
                    env = $fenv,
                    value_name = $fvalue,
                    help = $crate::config::settings::help(
                        &[$($fdoc),*],
                        &{ let v: $fty = $fdefault; v }.to_string(),
                    )
                    $(, $fkey = $fval)*
                )]
                pub $fname: Option<$fty>,
            )*
            $(
                #[arg(
                    long = $dflag,
                    env = $denv,
                    value_name = $dvalue,
                    help = $crate::config::settings::help(&[$($ddoc),*], $dshown)
                    $(, $dkey = $dval)*
                )]
                pub $dname: Option<$dty>,
            )*
            $(
                #[doc = concat!("From ", $senv, " or the file only, never a flag.")]
                #[arg(skip)]
                pub $sname: Option<$sty>,
            )*
            // Last, so `--help` lists the table's settings before the
            // tables flattened in.
            $($args_extra)*
        }

        $(#[$file_meta])*
        #[derive(Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        $file_vis struct $File {
            $($file_extra)*
            $( $fname: Option<$fty>, )*
            $( $dname: Option<$dty>, )*
            $( $sname: Option<$sty>, )*
            $( $oname: Option<$oty>, )*
        }

        $(#[$layered_meta])*
        #[derive(Clone)]
        pub struct $Layered {
            $( pub $fname: $fty, )*
            $( pub $dname: Option<$dty>, )*
            $( pub $sname: Option<$sty>, )*
            $( pub $oname: $oty, )*
        }

        impl $Args {
            /// Flags and environment over the file, the file over the
            /// default. Takes the layered fields out of `file`, leaving
            /// its `file_extra` tables.
            fn layer(&self, file: &mut $File) -> $Layered {
                $Layered {
                    $( $fname: self.$fname.clone().or(file.$fname.take()).unwrap_or_else(|| $fdefault), )*
                    $( $dname: self.$dname.clone().or(file.$dname.take()), )*
                    $( $sname: self.$sname.clone().or(file.$sname.take()), )*
                    $( $oname: file.$oname.take().unwrap_or_else(|| $odefault), )*
                }
            }

            /// Takes the settings that have no flag from the environment.
            #[allow(dead_code)] // a group without secrets has nothing to take
            fn secrets_from_env(&mut self) {
                $(
                    if self.$sname.is_none() {
                        self.$sname = std::env::var($senv).ok().filter(|v| !v.is_empty());
                    }
                )*
            }

            /// This group's rows of the configuration reference.
            pub fn reference() -> Vec<$crate::config::settings::SettingDoc> {
                use $crate::config::settings::SettingDoc;
                let table: Option<&'static str> = $table;
                let mut rows = Vec::new();
                $( rows.push(SettingDoc::new(
                    table, stringify!($fname), (Some($fenv), Some($fflag)),
                    format!("`{}`", { let v: $fty = $fdefault; v }), &[$($fdoc),*],
                )); )*
                $( rows.push(SettingDoc::new(
                    table, stringify!($dname), (Some($denv), Some($dflag)),
                    $dshown.to_owned(), &[$($ddoc),*],
                )); )*
                $( rows.push(SettingDoc::new(
                    table, stringify!($sname), (Some($senv), None),
                    "none".to_owned(), &[$($sdoc),*],
                )); )*
                $( rows.push(SettingDoc::new(
                    table, stringify!($oname), (None, None),
                    format!("`{}`", { let v: $oty = $odefault; v }), &[$($odoc),*],
                )); )*
                rows
            }
        }
    };
}
pub(crate) use settings;
