# cython: language_level=3
"""C-level declarations of ovsnet._classifier, for other Cython modules to cimport.

    from ovsnet._classifier cimport _trie_lookup

``_trie_lookup(trie, value)`` is ``PrefixTrie.lookup`` (``trie_lookup_value``):
``(maskbits, plens)`` for ``value``, reading the trie's Python dictionaries.
"""

cdef tuple _trie_lookup(object trie, object value)
