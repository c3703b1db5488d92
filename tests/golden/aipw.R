# Golden values for phb_eval.models.aipw, written from the formulas (glm / MASS::glm.nb fits, no AIPW package).
# Run from the repository root:  Rscript tests/golden/aipw.R   (writes tests/golden/aipw_golden.json)
# Data: tests/golden/aipw_data.csv (tests/golden/aipw_make_data.py).
#
# Propensity: glm(phb ~ x1 + x2, binomial). Outcome model per arm on x1 + x2: lm, logit glm, NB2 glm.nb with
# offset(log(expo)), Gamma(log) glm. ATT (normalised control weights e/(1-e)) and ATE (as Stata teffects aipw):
#   ATT: mean1 = sum_T y / sum_T E; mean0 = sum_T m0 / sum_T E + sum_C w (y - m0) / sum_C w E
#   ATE: mean_a = [sum m_a + sum_{T=a} (y - m_a) / p_a] / sum E
# The stacked estimating equations (propensity scores, outcome-model scores, effect equations) are solved
# by Newton from the glm fits; the covariance is sandwich::vcovCL(type = "HC0", cadjust = TRUE) by site on
# an object whose estfun() and bread() are those equations.
suppressPackageStartupMessages({library(MASS); library(sandwich); library(jsonlite)})
d <- read.csv("tests/golden/aipw_data.csv")
n <- nrow(d); tt <- d$phb
X <- cbind(1, d$x1, d$x2); Z <- X
k <- ncol(X); kz <- ncol(Z)

mean_fn <- function(model, p, off) {
  eta <- drop(X %*% p[1:k])
  switch(model, linear = eta, logit = plogis(eta), exp(eta + off))
}
score_fn <- function(model, p, y, off) {
  mu <- mean_fn(model, p, off)
  if (model %in% c("linear", "logit")) return(X * (y - mu))
  if (model == "gamma_log") return(X * ((y - mu) / mu))
  a <- p[k + 1]
  sb <- X * ((y - mu) / (1 + a * mu))
  sa <- (digamma(1 / a) - digamma(y + 1 / a) + log1p(a * mu)) / a^2 + (y - mu) / (a * (1 + a * mu))
  cbind(sb, sa)
}

make <- function(model, estimand, y, E) {
  off <- log(E)
  q <- k + (model == "negbin")
  arms <- if (estimand == "att") 0 else c(0, 1)
  npsi <- if (estimand == "att") 3 else 2
  size <- kz + q * length(arms) + npsi
  moments <- function(theta) {
    e <- plogis(drop(Z %*% theta[1:kz]))
    cols <- list(Z * (tt - e)); mu <- list(); pos <- kz
    for (a in arms) {
      p <- theta[(pos + 1):(pos + q)]; pos <- pos + q
      cols[[length(cols) + 1]] <- score_fn(model, p, y, off) * (tt == a)
      mu[[as.character(a)]] <- mean_fn(model, p, off)
    }
    psi <- theta[(pos + 1):(pos + npsi)]
    if (estimand == "att") {
      w <- e / (1 - e); m0 <- mu[["0"]]
      g <- cbind(tt * (y - psi[1] * E), tt * (m0 - psi[2] * E), (1 - tt) * w * (y - m0 - psi[3] * E))
    } else {
      m1 <- mu[["1"]]; m0 <- mu[["0"]]
      g <- cbind(m1 + tt * (y - m1) / e - psi[1] * E, m0 + (1 - tt) * (y - m0) / (1 - e) - psi[2] * E)
    }
    do.call(cbind, c(cols, list(g)))
  }
  jac <- function(theta) {
    A <- matrix(0, size, size)
    for (j in 1:size) {
      h <- 1e-6 * max(1, abs(theta[j])); up <- theta; dn <- theta
      up[j] <- up[j] + h; dn[j] <- dn[j] - h
      A[, j] <- (colSums(moments(up)) - colSums(moments(dn))) / (2 * h)
    }
    A
  }
  fit_arm <- function(a) {
    s <- tt == a; dd <- data.frame(y = y[s], x1 = d$x1[s], x2 = d$x2[s], off = off[s])
    ctl <- glm.control(epsilon = 1e-12, maxit = 200)
    if (model == "linear") return(coef(lm(y ~ x1 + x2, dd)))
    if (model == "logit") return(coef(glm(y ~ x1 + x2, binomial, dd, control = ctl)))
    if (model == "gamma_log") return(coef(glm(y ~ x1 + x2, Gamma(link = "log"), dd, control = ctl)))
    f <- glm.nb(y ~ x1 + x2 + offset(off), dd, control = ctl)
    c(coef(f), 1 / f$theta)
  }
  ps <- glm(phb ~ x1 + x2, binomial, d, control = glm.control(epsilon = 1e-12, maxit = 200))
  theta <- c(coef(ps), unlist(lapply(arms, fit_arm)), rep(0, npsi))
  # psi from the other blocks (each effect equation is linear in its own psi)
  g0 <- colSums(moments(theta))[(size - npsi + 1):size]
  for (i in 1:npsi) { pr <- theta; pr[size - npsi + i] <- 1
    theta[size - npsi + i] <- g0[i] / (g0[i] - colSums(moments(pr))[size - npsi + i]) }
  for (it in 1:4) theta <- theta - solve(jac(theta), colSums(moments(theta)))
  list(theta = unname(theta), moments = moments, jac = jac, size = size, npsi = npsi)
}

estfun.stacked <- function(x, ...) x$moments(x$theta)
bread.stacked <- function(x, ...) solve(-x$jac(x$theta) / n)

outcomes <- list(linear = list(y = d$y_cont, E = rep(1, n)), logit = list(y = d$y_bin, E = rep(1, n)),
                 negbin = list(y = d$y_count, E = d$expo), gamma_log = list(y = d$y_cost, E = rep(1, n)))
out <- list()
for (model in names(outcomes)) for (estimand in c("att", "ate")) {
  s <- make(model, estimand, outcomes[[model]]$y, outcomes[[model]]$E)
  obj <- structure(s, class = "stacked")
  V <- vcovCL(obj, cluster = d$site, type = "HC0", cadjust = TRUE)
  j <- (s$size - s$npsi + 1):s$size
  d1 <- d0 <- rep(0, s$size)
  if (estimand == "att") { m1 <- s$theta[j[1]]; m0 <- s$theta[j[2]] + s$theta[j[3]]; d1[j[1]] <- 1; d0[j[2:3]] <- 1
  } else { m1 <- s$theta[j[1]]; m0 <- s$theta[j[2]]; d1[j[1]] <- 1; d0[j[2]] <- 1 }
  gd <- d1 - d0; gr <- d1 / m1 - d0 / m0
  out[[paste(model, estimand, sep = "_")]] <- list(
    mean1 = m1, mean0 = m0, difference = m1 - m0, se_difference = sqrt(drop(t(gd) %*% V %*% gd)),
    ratio = m1 / m0, se_log_ratio = sqrt(drop(t(gr) %*% V %*% gr)))
}
write_json(out, "tests/golden/aipw_golden.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
