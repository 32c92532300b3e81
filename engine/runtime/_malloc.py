"""glibc settings for processes that run a gateway (party processes, the exchange, bench peers).

A gRPC server has many threads, and glibc gives each thread its own malloc arena
and keeps freed chunk-sized buffers (1 MiB) in it: a gateway's RSS then grows by
~200 MiB per 256 MiB received although nothing holds the data (measured by
``fedspark bench federation``). Mapping buffers of 256 KiB and more with mmap,
which returns them to the OS when freed, and capping the arenas at two keeps the
receiving process flat. Children (the party's Spark JVM) inherit the settings,
which Hadoop's own launch scripts recommend for the JVM as well.
"""

GATEWAY_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "262144", "MALLOC_ARENA_MAX": "2"}
