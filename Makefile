# agentmesh_lifecycle — PGXS build
#
#   make && make install          build and install into pg_config's tree
#   make installcheck             regress + isolation + TAP, each on its own
#                                 temporary instance (run as a non-root user)

MODULE_big = agentmesh_lifecycle
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
PGFILEDESC = "agentmesh_lifecycle - lifecycle manager for AI-agent identities"

EXTENSION = agentmesh_lifecycle
DATA = $(sort $(wildcard sql/agentmesh_lifecycle--*.sql))

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

# pg_regress inputs are sql/<name>.sql (the install scripts also live in sql/
# and are excluded by their name); each test file is self-contained.
REGRESS = $(sort $(filter-out agentmesh_lifecycle--%,$(basename $(notdir $(wildcard sql/*.sql)))))
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf --temp-instance=./tmp_check_regress

ISOLATION = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=$(srcdir)/test --temp-config=$(srcdir)/test/regress.conf --temp-instance=./tmp_check_iso

TAP_TESTS = 1

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# TAP tests live in test/t rather than t/.
PROVE_TESTS = $(sort $(wildcard $(srcdir)/test/t/*.pl))
