//! Many nodes as separate processes: three `keygate serve` on one private
//! PostgreSQL (and a private Redis), with the faults of issue 10 injected
//! into those private services. A module of the `api` test binary (one
//! link for the crate's tests): run alone with `cargo test -p keygate
//! --test api multi_node::`. Without PostgreSQL's server programs or
//! redis-server installed the tests skip, unless
//! KEYGATE_TEST_REQUIRE_SERVICES=1.

mod support;

mod cluster_view;
mod faults_node;
mod faults_pg;
mod faults_redis;
mod harness;
mod propagation;
