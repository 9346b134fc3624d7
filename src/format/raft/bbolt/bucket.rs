//! Buckets of an open file: lookup by key, first and last key, and
//! in-order traversal that refuses cycles, shared pages and absurd depths
//! instead of looping.

use super::error::{show_key, BoltError};
use super::page::{NodePage, PageOrigin, BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG};
use super::read::Db;
use std::collections::HashSet;

/// A B+tree of more levels than this cannot be valid: every branch has at
/// least two children in a bbolt file, so 64 levels would need 2^64 pages.
pub const MAX_TREE_DEPTH: usize = 64;
/// Nested buckets deeper than this are refused (bbolt has no limit; no real
/// database comes close, and the limit bounds recursion on hostile input).
pub const MAX_BUCKET_DEPTH: usize = 32;

/// A bucket: its root page in the file, or its root page inline in the
/// parent's value (bbolt's small buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketRoot<'a> {
    Page(u64),
    Inline(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket<'a> {
    pub root: BucketRoot<'a>,
    pub sequence: u64,
}

impl<'a> Bucket<'a> {
    /// Parses a bucket value: root page id, sequence, then the inline page
    /// when the root id is 0.
    pub fn from_value(key: &[u8], value: &'a [u8]) -> Result<Bucket<'a>, BoltError> {
        if value.len() < BUCKET_HEADER_SIZE {
            return Err(BoltError::ShortBucketValue {
                key: show_key(key),
                len: value.len(),
            });
        }
        let root = super::page::u64_at(value, 0);
        let sequence = super::page::u64_at(value, 8);
        let root = if root == 0 {
            BucketRoot::Inline(&value[BUCKET_HEADER_SIZE..])
        } else {
            BucketRoot::Page(root)
        };
        Ok(Bucket { root, sequence })
    }
}

/// The first and last key of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange<'a> {
    pub first: &'a [u8],
    pub last: &'a [u8],
}

/// One step of a traversal, in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    Value {
        key: &'a [u8],
        value: &'a [u8],
    },
    /// A nested bucket. In `Db::walk` its items follow, then `EndBucket`.
    Bucket {
        key: &'a [u8],
        bucket: Bucket<'a>,
    },
    EndBucket,
}

/// Pages already entered during one traversal.
#[derive(Default)]
pub struct Visited(HashSet<u64>);

impl Visited {
    fn enter(&mut self, pgid: u64) -> Result<(), BoltError> {
        if self.0.insert(pgid) {
            Ok(())
        } else {
            Err(BoltError::PageRevisited { pgid })
        }
    }

    pub fn pages(&self) -> &HashSet<u64> {
        &self.0
    }
}

impl Db {
    /// The root bucket, whose keys are the top-level buckets.
    pub fn root(&self) -> Bucket<'_> {
        Bucket {
            root: BucketRoot::Page(self.meta().root),
            sequence: self.meta().root_sequence,
        }
    }

    /// The nested bucket `name` of `parent`.
    pub fn bucket<'a>(
        &'a self,
        parent: &Bucket<'a>,
        name: &[u8],
    ) -> Result<Option<Bucket<'a>>, BoltError> {
        match self.lookup(parent, name)? {
            None => Ok(None),
            Some((flags, value)) if flags & BUCKET_LEAF_FLAG != 0 => {
                Bucket::from_value(name, value).map(Some)
            }
            Some(_) => Err(BoltError::NotABucket(show_key(name))),
        }
    }

    /// A top-level bucket that must exist.
    pub fn top_bucket(&self, name: &[u8]) -> Result<Bucket<'_>, BoltError> {
        self.bucket(&self.root(), name)?
            .ok_or_else(|| BoltError::BucketNotFound(show_key(name)))
    }

    /// The value of `key` in `bucket`.
    pub fn get<'a>(
        &'a self,
        bucket: &Bucket<'a>,
        key: &[u8],
    ) -> Result<Option<&'a [u8]>, BoltError> {
        match self.lookup(bucket, key)? {
            None => Ok(None),
            Some((flags, _)) if flags & BUCKET_LEAF_FLAG != 0 => {
                Err(BoltError::NotAValue(show_key(key)))
            }
            Some((_, v)) => Ok(Some(v)),
        }
    }

    fn root_node<'a>(&'a self, bucket: &Bucket<'a>) -> Result<NodePage<'a>, BoltError> {
        match bucket.root {
            BucketRoot::Page(id) => self.node(id),
            BucketRoot::Inline(bytes) => {
                let n = NodePage::new(PageOrigin::Inline, bytes)?;
                if !n.is_leaf() {
                    // bbolt only inlines a single leaf.
                    return Err(BoltError::UnexpectedPageType {
                        origin: PageOrigin::Inline,
                        flags: n.header.flags,
                        expected: "leaf",
                    });
                }
                Ok(n)
            }
        }
    }

    /// Descends like bbolt's cursor seek: in a branch, the last child whose
    /// first key is <= the key (or the first child).
    fn lookup<'a>(
        &'a self,
        bucket: &Bucket<'a>,
        key: &[u8],
    ) -> Result<Option<(u32, &'a [u8])>, BoltError> {
        let mut node = self.root_node(bucket)?;
        for _ in 0..MAX_TREE_DEPTH {
            if node.is_leaf() {
                for i in 0..node.count() {
                    let e = node.leaf(i)?;
                    if e.key == key {
                        return Ok(Some((e.flags, e.value)));
                    }
                }
                return Ok(None);
            }
            if node.count() == 0 {
                return Err(BoltError::EmptyBranch {
                    origin: node.origin,
                });
            }
            let mut child = node.branch(0)?.child;
            for i in 1..node.count() {
                let e = node.branch(i)?;
                if e.key > key {
                    break;
                }
                child = e.child;
            }
            node = self.node(child)?;
        }
        Err(BoltError::TreeTooDeep {
            pgid: match node.origin {
                PageOrigin::File(id) => id,
                PageOrigin::Inline => 0,
            },
            limit: MAX_TREE_DEPTH,
        })
    }

    /// The first and last keys of a bucket (`None` if empty).
    pub fn first_last<'a>(
        &'a self,
        bucket: &Bucket<'a>,
    ) -> Result<Option<KeyRange<'a>>, BoltError> {
        let mut first: Option<&[u8]> = None;
        let mut last: Option<&[u8]> = None;
        if let (Some(f), Some(l)) = (self.edge(bucket, false)?, self.edge(bucket, true)?) {
            return Ok(Some(KeyRange { first: f, last: l }));
        }
        // An empty leaf at an edge (never written by bbolt): scan instead.
        self.for_each(bucket, |item| {
            if let Item::Value { key, .. } | Item::Bucket { key, .. } = item {
                first.get_or_insert(key);
                last = Some(key);
            }
            Ok::<(), BoltError>(())
        })?;
        Ok(first
            .zip(last)
            .map(|(first, last)| KeyRange { first, last }))
    }

    fn edge<'a>(
        &'a self,
        bucket: &Bucket<'a>,
        rightmost: bool,
    ) -> Result<Option<&'a [u8]>, BoltError> {
        let mut node = self.root_node(bucket)?;
        for _ in 0..MAX_TREE_DEPTH {
            let n = node.count();
            if n == 0 {
                return Ok(None);
            }
            let i = if rightmost { n - 1 } else { 0 };
            if node.is_leaf() {
                return Ok(Some(node.leaf(i)?.key));
            }
            node = self.node(node.branch(i)?.child)?;
        }
        Ok(None)
    }

    /// Every item of one bucket in key order; nested buckets are reported,
    /// not entered.
    pub fn for_each<'a, E: From<BoltError>>(
        &'a self,
        bucket: &Bucket<'a>,
        mut f: impl FnMut(Item<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut visited = Visited::default();
        self.visit_bucket(bucket, &mut visited, None, &mut f)
    }

    /// Every item of the database in key order, entering nested buckets
    /// (`Bucket`, its items, `EndBucket`). One visited set for the whole walk,
    /// so no page is read twice whatever the file claims.
    pub fn walk<'a, E: From<BoltError>>(
        &'a self,
        visited: &mut Visited,
        mut f: impl FnMut(Item<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.visit_bucket(&self.root(), visited, Some(0), &mut f)
    }

    fn visit_bucket<'a, E: From<BoltError>>(
        &'a self,
        bucket: &Bucket<'a>,
        visited: &mut Visited,
        nesting: Option<usize>,
        f: &mut dyn FnMut(Item<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        if let BucketRoot::Page(id) = bucket.root {
            visited.enter(id)?;
        }
        let node = self.root_node(bucket)?;
        self.visit_node(node, 0, visited, nesting, f)
    }

    fn visit_node<'a, E: From<BoltError>>(
        &'a self,
        node: NodePage<'a>,
        depth: usize,
        visited: &mut Visited,
        nesting: Option<usize>,
        f: &mut dyn FnMut(Item<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        if node.is_leaf() {
            for i in 0..node.count() {
                let e = node.leaf(i)?;
                if e.flags & BUCKET_LEAF_FLAG == 0 {
                    f(Item::Value {
                        key: e.key,
                        value: e.value,
                    })?;
                    continue;
                }
                let bucket = Bucket::from_value(e.key, e.value)?;
                f(Item::Bucket { key: e.key, bucket })?;
                if let Some(level) = nesting {
                    if level + 1 > MAX_BUCKET_DEPTH {
                        return Err(BoltError::BucketsTooDeep {
                            limit: MAX_BUCKET_DEPTH,
                        }
                        .into());
                    }
                    self.visit_bucket(&bucket, visited, Some(level + 1), f)?;
                    f(Item::EndBucket)?;
                }
            }
            return Ok(());
        }
        if node.count() == 0 {
            return Err(BoltError::EmptyBranch {
                origin: node.origin,
            }
            .into());
        }
        if depth + 1 >= MAX_TREE_DEPTH {
            let pgid = match node.origin {
                PageOrigin::File(id) => id,
                PageOrigin::Inline => 0,
            };
            return Err(BoltError::TreeTooDeep {
                pgid,
                limit: MAX_TREE_DEPTH,
            }
            .into());
        }
        for i in 0..node.count() {
            let child = node.branch(i)?.child;
            visited.enter(child)?;
            let n = self.node(child)?;
            self.visit_node(n, depth + 1, visited, nesting, f)?;
        }
        Ok(())
    }
}
