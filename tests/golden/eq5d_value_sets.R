# Golden EQ-5D index values, computed independently of phb_eval from coefficients typed in from
# ../shared/docs/reference-data.md (not read from phb_eval/config): every EQ-5D-3L state (243) with the
# UK TTO set (Dolan 1997), every EQ-5D-5L state (3,125) with the England (Devlin 2018) and UK (Rowen
# 2026) sets, and every state of the van Hout 2012 UK crosswalk read from the shared reference table.
# Run from the repository root:  Rscript tests/golden/eq5d_value_sets.R [path/to/crosswalk.csv]
# Writes tests/golden/eq5d_value_sets.csv (value_set,state,index); rerunning reproduces it exactly.
args <- commandArgs(trailingOnly = TRUE)
crosswalk_csv <- if (length(args) >= 1) args[1] else "../shared/reference/eq5d5l_crosswalk_uk_vanhout2012.csv"

dims <- c("MO", "SC", "UA", "PD", "AD")
all_states <- function(n) {
  g <- expand.grid(AD = 1:n, PD = 1:n, UA = 1:n, SC = 1:n, MO = 1:n)   # first factor varies fastest
  g <- g[, dims]
  g[order(g$MO, g$SC, g$UA, g$PD, g$AD), ]
}
state_label <- function(g) apply(g, 1, paste, collapse = "")

# --- EQ-5D-3L UK TTO (Dolan 1997): 1 - 0.081*[any level >= 2] - 0.269*[any level 3] - decrements
dolan <- rbind(MO = c(0, 0.069, 0.314), SC = c(0, 0.104, 0.214), UA = c(0, 0.036, 0.094),
               PD = c(0, 0.123, 0.386), AD = c(0, 0.071, 0.236))
s3 <- all_states(3)
u3 <- numeric(nrow(s3))
for (i in seq_len(nrow(s3))) {
  lv <- unlist(s3[i, ])
  dec <- 0
  for (d in dims) dec <- dec + dolan[d, lv[[d]]]
  u3[i] <- 1 - 0.081 * any(lv >= 2) - 0.269 * any(lv == 3) - dec
}

# --- EQ-5D-5L additive sets: 1 - sum of decrements (levels 1..5)
devlin <- rbind(MO = c(0, 0.058, 0.076, 0.207, 0.274), SC = c(0, 0.050, 0.080, 0.164, 0.203),
                UA = c(0, 0.050, 0.063, 0.162, 0.184), PD = c(0, 0.063, 0.084, 0.276, 0.335),
                AD = c(0, 0.078, 0.104, 0.285, 0.289))
rowen <- rbind(MO = c(0, 0.032, 0.058, 0.179, 0.279), SC = c(0, 0.038, 0.060, 0.162, 0.206),
               UA = c(0, 0.049, 0.086, 0.184, 0.212), PD = c(0, 0.056, 0.066, 0.371, 0.479),
               AD = c(0, 0.041, 0.126, 0.313, 0.391))
s5 <- all_states(5)
additive <- function(tab, g) {
  u <- rep(1, nrow(g))
  for (d in dims) u <- u - tab[d, g[[d]]]
  u
}

# --- van Hout 2012 crosswalk: looked up from the shared table by the five levels (not by its label)
cw <- read.csv(crosswalk_csv, colClasses = c(state = "character"))
key <- function(g) paste(g$MO, g$SC, g$UA, g$PD, g$AD)
u_cw <- cw$index_uk_crosswalk[match(key(s5), key(cw))]
stopifnot(!anyNA(u_cw), nrow(cw) == 3125)

out <- rbind(
  data.frame(value_set = "uk_dolan1997", state = state_label(s3), index = u3),
  data.frame(value_set = "england_devlin2018", state = state_label(s5), index = additive(devlin, s5)),
  data.frame(value_set = "uk_rowen2026", state = state_label(s5), index = additive(rowen, s5)),
  data.frame(value_set = "uk_vanhout2012_crosswalk", state = state_label(s5), index = u_cw))
out$index <- sprintf("%.17g", out$index)
write.csv(out, "tests/golden/eq5d_value_sets.csv", row.names = FALSE, quote = FALSE)
cat(sprintf("wrote %d states to tests/golden/eq5d_value_sets.csv (R %s)\n", nrow(out), getRversion()))
